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

/// The company name of a symbol; an unknown symbol names itself.
pub fn company_for_symbol(symbol: &str) -> String {
    DEFAULT_COMPANIES
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(symbol))
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| symbol.to_string())
}

/// The symbol of a company: from the table when known, else derived from the
/// name (upper-cased, letters and digits only, at most 8 characters).
pub fn symbol_for_company(company: &str) -> String {
    if let Some((s, _)) = DEFAULT_COMPANIES.iter().find(|(_, c)| c.eq_ignore_ascii_case(company)) {
        return s.to_string();
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
}
