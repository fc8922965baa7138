//! Reading an import file into rows: CSV as spreadsheets export it (UTF-8 with or without a
//! byte-order mark, `,` or `;`, quoted fields with commas and newlines, CRLF or LF, columns
//! by header name in any order) or JSON `{users: [...]}`. Validation of the values is the
//! plan's job; this only finds them.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::text::FieldError;

/// Most rows one import may hold.
pub const MAX_ROWS: usize = 5_000;

/// One user of an import: a data row as given (empty cells are `None`). Its `Debug` never
/// shows the password.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[schema(as = ImportRow)]
pub struct RawRow {
    /// 3–64 characters of `[A-Za-z0-9_.-]`; matches an existing user regardless of case.
    #[schema(example = "ada.l")]
    pub username: Option<String>,
    /// 1–200 characters.
    #[schema(example = "Ada Lovelace")]
    pub real_name: Option<String>,
    /// `admin`, `teacher` or `student`; an existing user's role never changes.
    #[schema(example = "student")]
    pub role: Option<String>,
    /// Students only; unique.
    #[serde(default)]
    #[schema(example = "s1001")]
    pub student_number: Option<String>,
    /// 8–256 characters, for a created user (ignored for an existing one); without it the
    /// user gets an activation code.
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for RawRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRow")
            .field("username", &self.username)
            .field("real_name", &self.real_name)
            .field("role", &self.role)
            .field("student_number", &self.student_number)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Why a file could not be read as rows.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Not UTF-8, not CSV, not the JSON shape: 400.
    Malformed(String),
    /// A required column is missing: 422 `import_failed`.
    MissingColumns(Vec<FieldError>),
    /// More than [`MAX_ROWS`] rows: 413.
    TooManyRows,
}

/// The CSV columns an import reads; others are ignored.
const REQUIRED: [&str; 3] = ["username", "real_name", "role"];

/// A CSV file as spreadsheets export it: the header's names and the non-blank rows, each
/// with exactly the header's number of fields.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<csv::StringRecord>,
}

impl Table {
    /// The position of a column, by name regardless of case and surrounding space.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name))
    }
}

/// Reads a CSV export (UTF-8 with or without a byte-order mark, `,` or `;`), at most
/// [`MAX_ROWS`] rows, whose header names at least `min_columns` columns (a file with fewer is
/// not the table it claims to be).
pub fn table(bytes: &[u8], min_columns: usize) -> Result<Table, Unreadable> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Unreadable::Malformed("the file is not UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter(text)).flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Unreadable::Malformed(format!("not a CSV file: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    if headers.len() < min_columns {
        return Err(Unreadable::Malformed(format!(
            "not a CSV file: its header row has fewer than {min_columns} columns"
        )));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Unreadable::Malformed(format!("not a CSV file: {e}")))?;
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        // Another number of fields than the header: not the CSV the file claims to be.
        if record.len() != headers.len() {
            let line = record.position().map_or(0, |p| p.line());
            return Err(Unreadable::Malformed(format!(
                "not a CSV file: line {line} has {} fields, the header {}",
                record.len(),
                headers.len()
            )));
        }
        if rows.len() == MAX_ROWS {
            return Err(Unreadable::TooManyRows);
        }
        rows.push(record);
    }
    Ok(Table { headers, rows })
}

pub fn csv(bytes: &[u8]) -> Result<Vec<RawRow>, Unreadable> {
    // An import needs three columns; a file whose header has one is not a table at all.
    let table = table(bytes, 2)?;
    let missing: Vec<FieldError> = REQUIRED
        .iter()
        .filter(|name| table.column(name).is_none())
        .map(|name| FieldError::new(*name, format!("the file has no `{name}` column")))
        .collect();
    if !missing.is_empty() {
        return Err(Unreadable::MissingColumns(missing));
    }
    let [username, real_name, role, student_number, password] =
        ["username", "real_name", "role", "student_number", "password"].map(|name| table.column(name));
    Ok(table
        .rows
        .iter()
        .map(|record| {
            let cell = |index: Option<usize>| {
                index.and_then(|i| record.get(i)).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
            };
            RawRow {
                username: cell(username),
                real_name: cell(real_name),
                role: cell(role),
                student_number: cell(student_number),
                // A password is taken as written (spaces are part of it); only an empty cell
                // means none.
                password: password.and_then(|i| record.get(i)).filter(|v| !v.is_empty()).map(str::to_owned),
            }
        })
        .collect())
}

/// `;` if the header line has more of them than commas (outside quotes), else `,`.
fn delimiter(text: &str) -> u8 {
    // The reader skips blank lines before the header, so this must too.
    let header = text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
    let (mut quoted, mut commas, mut semicolons) = (false, 0, 0);
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// An import as JSON.
#[derive(Deserialize, ToSchema)]
pub struct JsonImport {
    /// The users, as the rows of a CSV file would give them (at most 5,000).
    pub users: Vec<RawRow>,
}

pub fn json(bytes: &[u8]) -> Result<Vec<RawRow>, Unreadable> {
    let body: JsonImport = serde_json::from_slice(bytes)
        .map_err(|e| Unreadable::Malformed(format!("malformed JSON body: {e}")))?;
    if body.users.len() > MAX_ROWS {
        return Err(Unreadable::TooManyRows);
    }
    Ok(body
        .users
        .into_iter()
        .map(|row| {
            let clean = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            RawRow {
                username: clean(row.username),
                real_name: clean(row.real_name),
                role: clean(row.role),
                student_number: clean(row.student_number),
                password: row.password.filter(|p| !p.is_empty()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(username: &str, real_name: &str, role: &str) -> RawRow {
        RawRow {
            username: Some(username.into()),
            real_name: Some(real_name.into()),
            role: Some(role.into()),
            ..RawRow::default()
        }
    }

    #[test]
    fn a_spreadsheet_export_with_bom_semicolons_quotes_and_crlf_is_read() {
        let file = "\u{feff}role;Real_Name;username;notes\r\nstudent;\"Müller; Jr., Zoë\";zm;\r\n\r\nteacher;Lin;lb;\"two\nlines\"\r\n";
        let rows = csv(file.as_bytes()).unwrap();
        assert_eq!(rows, vec![row("zm", "Müller; Jr., Zoë", "student"), row("lb", "Lin", "teacher")]);
    }

    #[test]
    fn commas_and_optional_columns_are_read_and_empty_cells_are_none() {
        let file = "username,real_name,role,student_number,password\nada,Ada,student,s1,\nbob,Bob,student,,long enough pw\n";
        let rows = csv(file.as_bytes()).unwrap();
        assert_eq!(rows[0].student_number.as_deref(), Some("s1"));
        assert_eq!(rows[0].password, None);
        assert_eq!(rows[1].password.as_deref(), Some("long enough pw"));
    }

    #[test]
    fn a_leading_blank_line_and_spaces_in_passwords_are_kept_as_a_spreadsheet_means_them() {
        let rows =
            csv(b"\r\nusername;real_name;role;password\r\nada;Ada;student;  pass phrase  \r\n").unwrap();
        assert_eq!(rows[0].password.as_deref(), Some("  pass phrase  "));
        assert!(!format!("{:?}", rows[0]).contains("pass phrase"), "Debug never shows a password");
        assert_eq!(table(b"username\nada.l\n", 1).unwrap().rows.len(), 1, "a one-column class list");
    }

    #[test]
    fn missing_columns_not_utf8_and_too_many_rows_are_refused() {
        let Err(Unreadable::MissingColumns(missing)) = csv(b"username,role\nada,student\n") else { panic!() };
        assert_eq!(missing.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["real_name"]);
        assert!(matches!(csv(b"username,real_name,role\n\xff\xfe,x,y\n"), Err(Unreadable::Malformed(_))));
        let many = "username,real_name,role\n".to_owned() + &"a,b,c\n".repeat(MAX_ROWS + 1);
        assert_eq!(csv(many.as_bytes()), Err(Unreadable::TooManyRows));
        assert!(matches!(json(b"{\"users\": 3}"), Err(Unreadable::Malformed(_))));
        assert!(matches!(
            csv(b"username,real_name,role
a,b,c,d
"),
            Err(Unreadable::Malformed(_))
        ));
        assert!(matches!(csv(b"%PDF-1.7 binary-ish\n"), Err(Unreadable::Malformed(_))));
    }
}
