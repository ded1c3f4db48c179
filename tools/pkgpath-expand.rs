fn main() -> std::process::ExitCode {
    portflow::pkgpath_expand::main()
}
