//! How the command-line programs (`tandem`, `tandem-quantize`) end on a usage error.

/// `--help`, `--version` and a bare command print as clap writes them and exit 0; a usage
/// error prints its first line (`error: …`, one line like every other error) and exits with 2
/// (failures exit with 1).
pub fn exit_on_parse_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
    std::process::exit(2);
}
