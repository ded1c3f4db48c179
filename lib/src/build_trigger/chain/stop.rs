//! A stop asked by SIGTERM or SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::Error;

/// A stop asked by SIGTERM or SIGINT: a flag, and a channel that wakes whoever
/// waits.
pub struct Stop {
    flag: Arc<AtomicBool>,
    pub rx: Receiver<()>,
    _tx: Sender<()>,
}

impl Stop {
    /// Catch SIGTERM and SIGINT from now on.
    pub fn install() -> Result<Stop, Error> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
            .map_err(Error::system("catch SIGTERM and SIGINT"))?;
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = unbounded();
        let (f, t) = (flag.clone(), tx.clone());
        std::thread::spawn(move || {
            for _ in signals.forever() {
                f.store(true, Ordering::SeqCst);
                let _ = t.send(());
            }
        });
        Ok(Stop { flag, rx, _tx: tx })
    }

    /// A stop that never comes (for tests).
    pub fn never() -> Stop {
        let (tx, rx) = unbounded();
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            rx,
            _tx: tx,
        }
    }

    /// The flag alone, for a thread that only looks at it.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    pub fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}
