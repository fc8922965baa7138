//! Content negotiation between JSON and CSV, and CSV writing that is safe to open in a
//! spreadsheet.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `csv` for a CSV download (same as `Accept: text/csv`); default JSON.
    #[param(inline)]
    pub format: Option<Format>,
}

/// CSV if asked for by `?format=csv`, or by an `Accept` header that names `text/csv`
/// (and no explicit `?format=json`).
pub fn wants_csv(req: &HttpRequest, query: &FormatQuery) -> bool {
    match query.format {
        Some(format) => format == Format::Csv,
        None => req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.split(',').any(|media| media.trim().starts_with("text/csv"))),
    }
}

/// Writes a header and rows as RFC 4180 CSV (UTF-8, quoted where needed).
pub fn to_csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Result<String, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::Unexpected(anyhow::Error::new(e).context("writing CSV"));
    writer.write_record(header).map_err(failed)?;
    for row in rows {
        writer.write_record(row).map_err(failed)?;
    }
    let bytes = writer.into_inner().map_err(|e| ApiError::Unexpected(anyhow::anyhow!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Unexpected(e.into()))
}

/// A free-text cell, defused so a spreadsheet does not run it as a formula (OWASP's CSV
/// injection advice: a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
pub fn text_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() }
}

pub fn csv_response(filename: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_and_newlines_are_quoted() {
        let csv = to_csv(&["a", "b"], [vec!["José Müller, Jr.".into(), "say \"hi\"\nthere".into()]]).unwrap();
        assert_eq!(csv, "a,b\n\"José Müller, Jr.\",\"say \"\"hi\"\"\nthere\"\n");
    }

    #[test]
    fn formula_like_text_is_defused() {
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text_cell("@SUM(1)"), "'@SUM(1)");
        assert_eq!(text_cell("Zoë"), "Zoë");
    }
}
