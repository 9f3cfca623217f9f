//! Canonical strings: the exact bytes a channel signs.

/// `k1=v1&k2=v2` sorted by key (byte order), leaving out empty values and the `excluded` keys,
/// with values as they are (not URL-encoded). The usual "sort the parameters and sign" scheme.
pub fn sorted_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    excluded: &[&str],
) -> String {
    let mut kept: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && !excluded.contains(k))
        .collect();
    kept.sort_unstable();
    join_pairs(&kept)
}

/// `k1=v1&k2=v2` in the order given, values as they are.
pub fn join_pairs(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Lines each followed by `\n`: "METHOD\nPATH\ntimestamp\nnonce\nbody\n" style messages.
pub fn lines(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        out.push_str(part);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_drops_empty_and_excluded() {
        let s = sorted_pairs(
            [
                ("b", "2"),
                ("sign", "x"),
                ("a", "1"),
                ("c", ""),
                ("sign_type", "RSA2"),
            ],
            &["sign", "sign_type"],
        );
        assert_eq!(s, "a=1&b=2");
    }

    #[test]
    fn lines_end_every_part_with_newline() {
        assert_eq!(lines(&["GET", "/x", ""]), "GET\n/x\n\n");
    }
}
