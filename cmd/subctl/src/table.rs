//! Output of read commands: aligned tables (Submariner's column names), JSON or YAML.

use serde_json::Value;

/// `-o` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// A JSON array of rows.
    Json,
    /// A YAML list of rows.
    Yaml,
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" | "" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            other => Err(format!(
                "unknown output format {other:?}: use table, json or yaml"
            )),
        }
    }
}

/// Renders rows (objects keyed by column name) in the chosen format.
pub fn render(columns: &[&str], rows: &[Value], output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(rows).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(rows).unwrap_or_default(),
        Output::Table => {
            let cell = |row: &Value, col: &str| match &row[col] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            let widths: Vec<usize> = columns
                .iter()
                .map(|c| {
                    rows.iter()
                        .map(|r| cell(r, c).chars().count())
                        .chain([c.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<String>| {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        s.push_str(c);
                    } else {
                        s.push_str(&format!("{c:<w$}   ", w = widths[i]));
                    }
                }
                s.trim_end().to_string() + "\n"
            };
            let mut out = line(columns.iter().map(|c| c.to_string()).collect());
            for r in rows {
                out.push_str(&line(columns.iter().map(|c| cell(r, c)).collect()));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            json!({"CLUSTER": "cluster1", "ENDPOINT IP": "172.18.0.4"}),
            json!({"CLUSTER": "c2", "ENDPOINT IP": "x"}),
        ];
        let t = render(&["CLUSTER", "ENDPOINT IP"], &rows, Output::Table);
        assert_eq!(t, "CLUSTER    ENDPOINT IP\ncluster1   172.18.0.4\nc2         x\n");
        assert!(render(&["CLUSTER"], &rows, Output::Json).contains("\"CLUSTER\": \"cluster1\""));
        assert!(render(&["CLUSTER"], &rows, Output::Yaml).contains("CLUSTER: cluster1"));
    }
}
