fn main() -> std::process::ExitCode {
    portflow::clean_env::main()
}
