fn main() -> std::process::ExitCode {
    portflow::collect_built::main()
}
