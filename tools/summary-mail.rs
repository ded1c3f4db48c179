fn main() -> std::process::ExitCode {
    portflow::summary_mail::main()
}
