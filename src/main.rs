fn main() -> std::process::ExitCode {
    netmeter::cli::main()
}
