fn main() -> std::process::ExitCode {
    portflow::ports_delta::main()
}
