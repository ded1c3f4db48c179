fn main() -> std::process::ExitCode {
    portflow::coordinator::main()
}
