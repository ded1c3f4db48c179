fn main() -> std::process::ExitCode {
    portflow::build_list::main()
}
