fn main() -> std::process::ExitCode {
    portflow::build_trigger::main()
}
