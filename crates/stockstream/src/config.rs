//! Options come from flags, then `STOCKSTREAM_*` environment variables, then an
//! optional `stockstream.toml`. The file is applied by filling in environment
//! variables that are not already set, so clap's own flag > env order does the rest.

use anyhow::Context;

/// Reads `$STOCKSTREAM_CONFIG` or `./stockstream.toml` when present. A key
/// `batch-size = 500` becomes `STOCKSTREAM_BATCH_SIZE=500` unless that is set.
pub fn load_file_into_env() -> anyhow::Result<()> {
    let (path, required) = match std::env::var("STOCKSTREAM_CONFIG") {
        Ok(p) => (std::path::PathBuf::from(p), true),
        Err(_) => (std::path::PathBuf::from("stockstream.toml"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read config file {}", path.display())),
    };
    for (key, value) in parse(&text).with_context(|| format!("config file {}", path.display()))? {
        if std::env::var_os(&key).is_none() {
            std::env::set_var(key, value);
        }
    }
    Ok(())
}

/// The environment variables a config text stands for.
fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse()?;
    table
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => anyhow::bail!("key {k:?}: unsupported value {other}"),
            };
            Ok((format!("STOCKSTREAM_{}", k.to_ascii_uppercase().replace('-', "_")), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_environment_names() {
        let vars = parse("db = \"x.db\"\nbatch-size = 500\nsymbols = [\"NVDA\", \"TSLA\"]\n").unwrap();
        assert!(vars.contains(&("STOCKSTREAM_DB".into(), "x.db".into())));
        assert!(vars.contains(&("STOCKSTREAM_BATCH_SIZE".into(), "500".into())));
        assert!(vars.contains(&("STOCKSTREAM_SYMBOLS".into(), "NVDA,TSLA".into())));
        assert!(parse("[section]\nkey = 1\n").is_err());
    }
}
