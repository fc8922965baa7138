//! Exports: content negotiation between JSON, CSV and an Excel workbook, and one table that
//! both file formats write — CSV safe to open in a spreadsheet, XLSX with typed cells.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::zone::Zone;
use crate::error::ApiError;

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Xlsx,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `csv` for a CSV download (same as `Accept: text/csv`), `xlsx` for an Excel workbook
    /// (same as `Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`);
    /// default JSON.
    #[param(inline)]
    pub format: Option<Format>,
}

/// What to answer: `?format=` if given, else the most preferred kind the `Accept` header
/// names (by q-value, then specificity, then order) that this route can produce: a workbook,
/// CSV or JSON; `*/*` and `application/*` mean JSON, `text/*` CSV, and no header JSON. An
/// `Accept` that names none of them (or only with `q=0`) is 406 `not_acceptable`.
pub fn negotiate(req: &HttpRequest, format: Option<Format>) -> Result<Format, ApiError> {
    use actix_web::http::header::{Accept, Header, Quality};
    if let Some(format) = format {
        return Ok(format);
    }
    let present =
        req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| !v.trim().is_empty());
    if !present {
        return Ok(Format::Json);
    }
    // A header that cannot be read is ignored, as if it were not there.
    let Ok(accept) = Accept::parse(req) else {
        return Ok(Format::Json);
    };
    let wanted = Accept(accept.0.into_iter().filter(|range| range.quality > Quality::ZERO).collect());
    wanted
        .ranked()
        .iter()
        .find_map(|mime| match mime.essence_str() {
            XLSX => Some(Format::Xlsx),
            "text/csv" | "text/*" => Some(Format::Csv),
            "application/json" | "application/*" | "*/*" => Some(Format::Json),
            _ => None,
        })
        .ok_or(ApiError::NotAcceptable)
}

/// One cell of an export.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text someone typed (a name, a note): defused against formulas in CSV.
    Text(String),
    /// Text from a fixed set (a username, a status): written as is.
    Plain(String),
    Int(i64),
    /// A fraction such as a rate: 4 decimals in CSV, a number in the workbook.
    Rate(f64),
    Time(DateTime<Utc>),
    Empty,
}

impl Cell {
    pub fn text(value: Option<&str>) -> Self {
        value.map_or(Cell::Empty, |v| Cell::Text(v.to_owned()))
    }

    pub fn time(value: Option<DateTime<Utc>>) -> Self {
        value.map_or(Cell::Empty, Cell::Time)
    }

    pub fn rate(value: Option<f64>) -> Self {
        value.map_or(Cell::Empty, Cell::Rate)
    }
}

/// A header row and rows, as both file formats write them.
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// RFC 4180 CSV (UTF-8, quoted where needed); times on `zone`'s clock with their offset.
    pub fn to_csv(&self, zone: Zone) -> Result<Vec<u8>, ApiError> {
        let failed = |e: csv::Error| ApiError::Unexpected(anyhow::Error::new(e).context("writing CSV"));
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&self.header).map_err(failed)?;
        for row in &self.rows {
            writer
                .write_record(row.iter().map(|cell| match cell {
                    Cell::Text(text) => text_cell(text),
                    Cell::Plain(text) => text.clone(),
                    Cell::Int(n) => n.to_string(),
                    Cell::Rate(rate) => format!("{rate:.4}"),
                    Cell::Time(at) => zone.format(*at),
                    Cell::Empty => String::new(),
                }))
                .map_err(failed)?;
        }
        writer.into_inner().map_err(|e| ApiError::Unexpected(anyhow::anyhow!("writing CSV: {e}")))
    }

    /// An Excel workbook of one worksheet: the same header (bold, frozen) and rows, numbers
    /// as numbers and times as date-time cells on `zone`'s clock.
    pub fn to_xlsx(&self, zone: Zone, sheet_name: &str) -> Result<Vec<u8>, ApiError> {
        use rust_xlsxwriter::{Format as CellFormat, Workbook};
        let failed = |e: rust_xlsxwriter::XlsxError| {
            ApiError::Unexpected(anyhow::Error::new(e).context("writing XLSX"))
        };
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name(sheet_name).map_err(failed)?;
        let bold = CellFormat::new().set_bold();
        let when = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let fraction = CellFormat::new().set_num_format("0.0000");
        for (col, title) in self.header.iter().enumerate() {
            sheet.write_string_with_format(0, col as u16, *title, &bold).map_err(failed)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(text) | Cell::Plain(text) => sheet.write_string(r, c, text).map(drop),
                    Cell::Int(n) => sheet.write_number(r, c, *n as f64).map(drop),
                    Cell::Rate(rate) => sheet.write_number_with_format(r, c, *rate, &fraction).map(drop),
                    Cell::Time(at) => {
                        let local = at.with_timezone(&zone.tz()).naive_local();
                        sheet.write_datetime_with_format(r, c, local, &when).map(drop)
                    }
                    Cell::Empty => Ok(()),
                }
                .map_err(failed)?;
            }
        }
        sheet.set_freeze_panes(1, 0).map_err(failed)?;
        sheet.autofit();
        workbook.save_to_buffer().map_err(failed)
    }

    /// The table as a download in `format` (CSV or XLSX), named `stem.csv` / `stem.xlsx`.
    pub fn download(&self, format: Format, zone: Zone, stem: &str) -> Result<HttpResponse, ApiError> {
        let (body, content_type, extension) = match format {
            Format::Xlsx => (self.to_xlsx(zone, "attendance")?, XLSX, "xlsx"),
            _ => (self.to_csv(zone)?, "text/csv; charset=utf-8", "csv"),
        };
        Ok(HttpResponse::Ok()
            .content_type(content_type)
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{stem}.{extension}\""),
            ))
            .body(body))
    }
}

/// A free-text cell, defused so a spreadsheet does not run it as a formula (OWASP's CSV
/// injection advice: a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
pub fn text_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn table(rows: Vec<Vec<Cell>>) -> Table {
        Table { header: vec!["a", "b"], rows }
    }

    #[test]
    fn fields_with_commas_quotes_and_newlines_are_quoted() {
        let csv =
            table(vec![vec![Cell::Text("José Müller, Jr.".into()), Cell::Text("say \"hi\"\nthere".into())]])
                .to_csv(Zone::UTC)
                .unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "a,b\n\"José Müller, Jr.\",\"say \"\"hi\"\"\nthere\"\n");
    }

    #[test]
    fn formula_like_text_is_defused() {
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text_cell("@SUM(1)"), "'@SUM(1)");
        assert_eq!(text_cell("Zoë"), "Zoë");
    }

    #[test]
    fn numbers_rates_and_times_are_written_for_each_format() {
        let at: DateTime<Utc> = "2026-10-27T08:15:00Z".parse().unwrap();
        let t = table(vec![vec![Cell::Rate(0.75), Cell::Time(at)], vec![Cell::Int(3), Cell::Empty]]);
        let vienna = Zone::parse("Europe/Vienna").unwrap();
        assert_eq!(
            String::from_utf8(t.to_csv(vienna).unwrap()).unwrap(),
            "a,b\n0.7500,2026-10-27T09:15:00+01:00\n3,\n"
        );
        let xlsx = t.to_xlsx(vienna, "attendance").unwrap();
        assert_eq!(&xlsx[..2], b"PK", "a zip container");
    }

    #[test]
    fn the_accept_header_picks_the_format_or_is_refused() {
        let pick = |accept: Option<&str>| {
            let mut req = TestRequest::get();
            if let Some(accept) = accept {
                req = req.insert_header((header::ACCEPT, accept));
            }
            negotiate(&req.to_http_request(), None).map_err(|e| e.code())
        };
        assert_eq!(pick(None), Ok(Format::Json));
        assert_eq!(pick(Some("*/*")), Ok(Format::Json));
        assert_eq!(pick(Some("text/csv;q=0.9, application/json")), Ok(Format::Json), "by q-value");
        assert_eq!(pick(Some("application/json;q=0.5, text/csv")), Ok(Format::Csv));
        assert_eq!(pick(Some("text/csv, application/json")), Ok(Format::Csv), "equal q: listed order");
        assert_eq!(pick(Some(XLSX)), Ok(Format::Xlsx));
        assert_eq!(pick(Some("text/*")), Ok(Format::Csv));
        assert_eq!(pick(Some("image/png")), Err("not_acceptable"));
        assert_eq!(pick(Some("text/csv;q=0")), Err("not_acceptable"));
    }
}
