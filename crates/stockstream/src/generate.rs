//! `stockstream generate`: synthetic market data as CSV in the original
//! project's layout.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use stockstream_sources::Synthetic;

use crate::cli::SyntheticArgs;

/// The data is SYNTHETIC: correlated geometric Brownian motion, not real prices.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let generator = Synthetic::new(args.synthetic.config()).map_err(anyhow::Error::msg)?;
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 16, sink));
    out.write_record(["Date", "Open", "High", "Low", "Close", "Volume", "Company Name"])?;
    let mut fields: [String; 6] = Default::default();
    for bar in generator {
        use std::fmt::Write as _;
        for f in fields.iter_mut() {
            f.clear();
        }
        let _ = write!(fields[0], "{}", bar.ts);
        for (f, v) in fields[1..].iter_mut().zip([bar.open, bar.high, bar.low, bar.close, bar.volume]) {
            let _ = write!(f, "{v}");
        }
        out.write_record(fields.iter().map(String::as_str).chain([bar.company.as_str()]))?;
    }
    out.flush().context("cannot write the generated data")?;
    Ok(())
}
