fn main() -> std::process::ExitCode {
    portflow::rsync_list::main()
}
