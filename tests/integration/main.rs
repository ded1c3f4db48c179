//! The one integration-test binary: every test drives the real binaries.

mod support;

mod bad_input;
mod build_list;
mod build_trigger;
mod chain;
mod clean_env;
mod collect_built;
mod coordinator;
mod demo;
mod examples;
mod fixture;
mod install;
mod manpages;
mod pkgpath_expand;
mod ports_delta;
mod rsync_list;
mod smtpd;
mod sshd;
mod summary_mail;
mod vcs;
mod vocabulary;
