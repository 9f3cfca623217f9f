//! Reports as CSV: a header line, one line per row, fields quoted when they hold a comma, a
//! quote or a line break, and text that a spreadsheet would run as a formula defused.

/// A report row that can be written as CSV.
pub trait CsvRow {
    const HEADER: &'static [&'static str];
    fn fields(&self) -> Vec<String>;
}

pub fn to_csv<T: CsvRow>(rows: &[T]) -> String {
    let mut out = T::HEADER.join(",");
    out.push('\n');
    for row in rows {
        let fields: Vec<String> = row.fields().iter().map(|f| field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn field(text: &str) -> String {
    let number = text.parse::<f64>().is_ok();
    let formula = !number && text.starts_with(['=', '+', '-', '@']);
    if formula || text.contains([',', '"', '\n', '\r']) {
        let text = if formula {
            format!("'{text}")
        } else {
            text.to_owned()
        };
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(&'static str, i64);

    impl CsvRow for Row {
        const HEADER: &'static [&'static str] = &["name", "minor"];
        fn fields(&self) -> Vec<String> {
            vec![self.0.to_owned(), self.1.to_string()]
        }
    }

    #[test]
    fn fields_are_quoted_when_they_must_be_and_formulas_defused() {
        let rows = [
            Row("gems, 100", -5),
            Row("say \"hi\"", 7),
            Row("=SUM(A1)", 0),
        ];
        assert_eq!(
            to_csv(&rows),
            "name,minor\n\"gems, 100\",-5\n\"say \"\"hi\"\"\",7\n\"'=SUM(A1)\",0\n"
        );
        assert_eq!(to_csv::<Row>(&[]), "name,minor\n");
    }
}
