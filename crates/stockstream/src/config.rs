//! Options come from flags, then `STOCKSTREAM_*` environment variables, then an
//! optional `stockstream.toml`. Each component's options are one typed clap
//! struct (`StoreArgs`, `KafkaArgs`, ...); the file's values become those
//! options' defaults, checked by the same parsers as flags, so clap's own order
//! (flag, then variable, then default) does the rest. A key that no option has,
//! or a value an option cannot take, is an error naming the key and the file.

use std::path::{Path, PathBuf};

use clap::Command;

/// A key of the file that is not an option: the company table.
const COMPANIES: &str = "companies";

/// The configuration file, read and parsed.
pub struct FileConfig {
    path: PathBuf,
    table: toml::Table,
}

/// `$STOCKSTREAM_CONFIG` (which must exist) or `./stockstream.toml` (optional:
/// absent, or in a folder that cannot be searched, means no file).
pub fn load() -> Result<Option<FileConfig>, String> {
    let (path, required) = match std::env::var_os("STOCKSTREAM_CONFIG") {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from("stockstream.toml"), false),
    };
    if !required && std::fs::metadata(&path).is_err() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse(&path, &text).map(Some)
}

fn parse(path: &Path, text: &str) -> Result<FileConfig, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("config file {}: {e}", path.display()))?;
    Ok(FileConfig { path: path.to_path_buf(), table })
}

impl FileConfig {
    /// `companies = ["BRK-B=Berkshire Hathaway", ...]`, as `STOCKSTREAM_COMPANIES` text.
    pub fn companies(&self) -> Option<String> {
        self.table.get(COMPANIES).map(text).map(|values| values.join(","))
    }

    /// Makes the file's values the defaults of the options they name, in every
    /// command that has them.
    pub fn apply(&self, mut cli: Command) -> Result<Command, String> {
        for (key, value) in self.table.iter().filter(|(k, _)| *k != COMPANIES) {
            let values = text(value);
            let env = format!("STOCKSTREAM_{}", key.to_ascii_uppercase().replace('-', "_"));
            let names_it =
                |a: &clap::Arg| a.get_long() == Some(key.as_str()) || a.get_env().is_some_and(|e| e == env.as_str());
            let mut known = false;
            let commands: Vec<String> = cli.get_subcommands().map(|c| c.get_name().to_string()).collect();
            for name in commands {
                let Some(arg) =
                    cli.find_subcommand(&name).expect("listed").get_arguments().find(|a| names_it(a)).cloned()
                else {
                    continue;
                };
                known = true;
                // The option's own parser, on its own: what the flag would accept.
                let parser = clap::Arg::new("value").long("value").value_parser(arg.get_value_parser().clone());
                let check = Command::new("config").no_binary_name(true).arg(parser);
                for v in &values {
                    check
                        .clone()
                        .try_get_matches_from(["--value", v.as_str()])
                        .map_err(|e| format!("config file {}: key {key:?}: {}", self.path.display(), first_line(&e)))?;
                }
                let id = arg.get_id().clone();
                let values = values.clone();
                cli = cli.mut_subcommand(name, move |c| c.mut_arg(id, move |a| a.default_values(values)));
            }
            if !known {
                return Err(format!(
                    "config file {}: unknown key {key:?} (keys are option names, like batch-size)",
                    self.path.display()
                ));
            }
        }
        Ok(cli)
    }
}

/// A value as the option texts it stands for (an array is several).
fn text(value: &toml::Value) -> Vec<String> {
    match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(items) => items.iter().flat_map(text).collect(),
        other => vec![other.to_string()],
    }
}

fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn apply(text: &str) -> Result<Command, String> {
        parse(Path::new("conf/stockstream.toml"), text)?.apply(crate::Cli::command())
    }

    #[test]
    fn values_become_defaults_that_flags_override() {
        let cli = apply("db = \"x.db\"\nbatch-size = 500\nsymbols = [\"NVDA\", \"TSLA\"]\n").unwrap();
        let m = cli.clone().try_get_matches_from(["stockstream", "run"]).unwrap();
        let run = m.subcommand_matches("run").unwrap();
        assert_eq!(run.get_one::<PathBuf>("db").unwrap(), &PathBuf::from("x.db"));
        assert_eq!(run.get_one::<usize>("batch_size"), Some(&500));
        let symbols: Vec<&String> = run.get_many::<String>("symbols").unwrap().collect();
        assert_eq!(symbols, ["NVDA", "TSLA"]);
        let m = cli.try_get_matches_from(["stockstream", "run", "--batch-size", "7"]).unwrap();
        assert_eq!(m.subcommand_matches("run").unwrap().get_one::<usize>("batch_size"), Some(&7));
    }

    #[test]
    fn a_mistyped_key_is_an_error_naming_it_and_the_file() {
        let e = apply("batch-sise = 500\n").err().unwrap();
        assert!(e.contains("\"batch-sise\"") && e.contains("conf/stockstream.toml"), "{e}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_naming_the_key() {
        let e = apply("batch-size = \"many\"\n").err().unwrap();
        assert!(e.contains("\"batch-size\"") && e.contains("conf/stockstream.toml") && e.contains("many"), "{e}");
        assert!(apply("[section]\nkey = 1\n").is_err());
    }

    #[test]
    fn companies_are_read_as_their_table() {
        let c = parse(Path::new("s.toml"), "companies = [\"BRK-B=Berkshire Hathaway\", \"X=Y\"]\n").unwrap();
        assert_eq!(c.companies().as_deref(), Some("BRK-B=Berkshire Hathaway,X=Y"));
        assert!(c.apply(crate::Cli::command()).is_ok());
    }
}
