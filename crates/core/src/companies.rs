//! The symbol ↔ company table. The original project's dataset names companies
//! ("NVIDIA"), Kafka keys and charts use symbols ("NVDA").

/// The built-in universe: the original project's seven companies.
pub const DEFAULT_COMPANIES: &[(&str, &str)] = &[
    ("NVDA", "NVIDIA"),
    ("TSLA", "Tesla"),
    ("META", "Meta"),
    ("AMZN", "Amazon"),
    ("AAPL", "Apple"),
    ("NFLX", "Netflix"),
    ("GOOGL", "Google"),
];

/// Symbols added by configuration (`companies = ["BRK-B=Berkshire Hathaway"]`),
/// consulted before the built-in table.
static EXTRA: std::sync::RwLock<Vec<(String, String)>> = std::sync::RwLock::new(Vec::new());

/// Adds `SYMBOL=Company` pairs to the table (later ones win).
pub fn register_companies(pairs: &[(String, String)]) {
    let mut extra = EXTRA.write().expect("company table lock");
    for (s, c) in pairs {
        extra.retain(|(es, ec)| !es.eq_ignore_ascii_case(s) && !ec.eq_ignore_ascii_case(c));
        extra.push((s.trim().to_string(), c.trim().to_string()));
    }
}

/// Parses `SYM=Company,SYM2=Company 2`.
pub fn parse_companies(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((s, c)) if !s.trim().is_empty() && !c.trim().is_empty() => {
                Ok((s.trim().to_string(), c.trim().to_string()))
            }
            _ => Err(format!("{p:?} is not SYMBOL=Company")),
        })
        .collect()
}

fn lookup(matches: impl Fn(&str, &str) -> bool) -> Option<(String, String)> {
    let extra = EXTRA.read().expect("company table lock");
    extra
        .iter()
        .rev()
        .find(|(s, c)| matches(s, c))
        .cloned()
        .or_else(|| DEFAULT_COMPANIES.iter().find(|(s, c)| matches(s, c)).map(|(s, c)| (s.to_string(), c.to_string())))
}

/// The registered company that `name` spells, in any case, as its name or as
/// its symbol (`apple`, `APPLE`, `aapl` → `Apple`); None for a name the table
/// does not know.
pub fn registered_company(name: &str) -> Option<(String, String)> {
    lookup(|s, c| c.eq_ignore_ascii_case(name) || s.eq_ignore_ascii_case(name))
}

/// The one symbol of an instrument, whatever a feed calls it: a registered
/// symbol or company name in any case gives the registered symbol (`aapl`,
/// `Apple` → `AAPL`); anything else is upper-cased.
pub fn canonical_symbol(symbol: &str) -> String {
    registered_company(symbol).map(|(s, _)| s).unwrap_or_else(|| symbol.to_ascii_uppercase())
}

/// The company name of a symbol; an unknown symbol names itself.
pub fn company_for_symbol(symbol: &str) -> String {
    lookup(|s, _| s.eq_ignore_ascii_case(symbol)).map(|(_, c)| c).unwrap_or_else(|| symbol.to_string())
}

/// The symbol of a company: from the table when known, else derived from the
/// name (upper-cased, letters and digits only, at most 8 characters).
pub fn symbol_for_company(company: &str) -> String {
    if let Some((s, _)) = lookup(|_, c| c.eq_ignore_ascii_case(company)) {
        return s;
    }
    let derived: String =
        company.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).take(8).collect();
    if derived.is_empty() {
        company.trim().to_string()
    } else {
        derived
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_names() {
        assert_eq!(symbol_for_company("NVIDIA"), "NVDA");
        assert_eq!(symbol_for_company("google"), "GOOGL");
        assert_eq!(symbol_for_company("Berkshire Hathaway B"), "BERKSHIR");
        assert_eq!(company_for_symbol("nflx"), "Netflix");
        assert_eq!(company_for_symbol("IBM"), "IBM");
    }

    #[test]
    fn configuration_extends_the_table() {
        let pairs = parse_companies("BRK-B=Berkshire Hathaway, JPM=JPMorgan Chase").unwrap();
        register_companies(&pairs);
        assert_eq!(company_for_symbol("brk-b"), "Berkshire Hathaway");
        assert_eq!(symbol_for_company("JPMorgan Chase"), "JPM");
        assert_eq!(company_for_symbol("NVDA"), "NVIDIA");
        assert!(parse_companies("JPM").is_err());
    }
}
