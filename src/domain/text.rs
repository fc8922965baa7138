//! Validated input: every free-text or bounded field of a request becomes a newtype through
//! its `parse`, and the field's OpenAPI constraints (pattern, lengths) come from the same
//! [`Rule`], so the document and the check cannot disagree.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The request field, as spelled in the body or query (e.g. `rotation_seconds`).
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Every invalid field of one request, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }
}

/// Rejects a request whose fields failed validation.
pub fn check(errors: Vec<FieldError>) -> Result<(), Invalid> {
    if errors.is_empty() { Ok(()) } else { Err(Invalid(errors)) }
}

/// Parses an optional field, collecting its error under `field`, so one response can
/// report every invalid field at once.
pub fn parse_field<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    match value.map(parse) {
        Some(Ok(parsed)) => Some(parsed),
        Some(Err(message)) => {
            errors.push(FieldError::new(field, message));
            None
        }
        None => None,
    }
}

/// No control characters, and at least one character that is not white space.
const NOT_BLANK: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters (may be empty or blank).
const PRINTABLE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters and no white space.
const NO_SPACES: &str = r"^[^\s\u0000-\u001f\u007f-\u009f]+$";
/// Letters, digits, `_`, `.` and `-`.
const USERNAME: &str = r"^[A-Za-z0-9_.-]{3,64}$";

/// What a text field accepts: its length in characters and the pattern it must match, as
/// both `parse` and the OpenAPI document state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub min: usize,
    pub max: usize,
    /// The JSON Schema pattern, if the field has one.
    pub pattern: Option<&'static str>,
}

impl Rule {
    /// Writes the rule into a string property's schema (no `minLength` where empty is fine).
    pub fn apply(&self, schema: &mut Object) {
        schema.min_length = (self.min > 0).then_some(self.min);
        schema.max_length = Some(self.max);
        schema.pattern = self.pattern.map(str::to_owned);
    }

    /// Checks length (in characters) and refuses control characters.
    fn check<'a>(&self, value: &'a str) -> Result<&'a str, String> {
        bounded_text(value, self.min, self.max)
    }
}

/// Checks a free-text value's length (in characters) and rejects control characters.
pub fn bounded_text(value: &str, min: usize, max: usize) -> Result<&str, String> {
    let len = value.chars().count();
    if len < min {
        return Err(if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters long")
        });
    }
    if len > max {
        return Err(format!("must be at most {max} characters long"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value)
}

/// Declares a trimmed, bounded free-text newtype.
macro_rules! trimmed_text {
    ($(#[$meta:meta])* $name:ident, $min:literal..=$max:literal, $pattern:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const RULE: Rule = Rule { min: $min, max: $max, pattern: Some($pattern) };

            /// Trims surrounding white space, then checks the rule.
            pub fn parse(raw: &str) -> Result<Self, String> {
                Self::RULE.check(raw.trim()).map(|text| Self(text.to_owned()))
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

trimmed_text!(
    /// A course's or lesson's title: 1–200 characters.
    Title, 1..=200, NOT_BLANK
);
trimmed_text!(
    /// A course's short code, e.g. from the timetable: 1–32 characters.
    CourseCode, 1..=32, NOT_BLANK
);
trimmed_text!(
    /// A person's name as shown to teachers: 1–200 characters.
    RealName, 1..=200, NOT_BLANK
);

/// A teacher's note on a record: at most 1000 characters; a blank note is no note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub const RULE: Rule = Rule { min: 0, max: 1000, pattern: Some(PRINTABLE) };

    /// `None` for a blank note.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let text = Self::RULE.check(raw.trim())?;
        Ok((!text.is_empty()).then(|| Self(text.to_owned())))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A check-in code as a student typed it: 1–32 bytes once trimmed. Whether it matches an
/// open check-in is the rotating code's to judge, not this type's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinCode(String);

impl CheckinCode {
    pub const RULE: Rule = Rule { min: 1, max: 32, pattern: Some(NOT_BLANK) };

    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim();
        if code.is_empty() || code.len() > Self::RULE.max {
            return Err("must be 1 to 32 characters long".into());
        }
        Ok(Self(code.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A student number: 1–32 characters, no white space or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentNumber(String);

impl StudentNumber {
    pub const RULE: Rule = Rule { min: 1, max: 32, pattern: Some(NO_SPACES) };

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().any(char::is_whitespace) {
            return Err("must not contain spaces".into());
        }
        Self::RULE.check(raw).map(|number| Self(number.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// 3–64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const RULE: Rule = Rule { min: 3, max: 64, pattern: Some(USERNAME) };

    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(Self::RULE.min..=Self::RULE.max).contains(&len) {
            return Err("must be 3 to 64 characters long".into());
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err("may contain only letters, digits, `_`, `.` and `-`".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8–256 characters; never logged or shown.
pub struct Password(String);

impl Password {
    pub const RULE: Rule = Rule { min: 8, max: 256, pattern: None };

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.chars().count() {
            n if n < Self::RULE.min => Err("must be at least 8 characters long".into()),
            n if n <= Self::RULE.max => Ok(Self(raw.to_owned())),
            _ => Err("must be at most 256 characters long".into()),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        for ok in ["abc", "ada.l", "A_b-9", &"x".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", &"x".repeat(65), "has space", "é-accent", "semi;colon", "quote'"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(257)).is_err());
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(RealName::parse("  Zoë O'Brien, Jr. ").unwrap().into_inner(), "Zoë O'Brien, Jr.");
        assert!(RealName::parse("   ").is_err());
        assert!(RealName::parse("bell\u{7}").is_err());
        assert!(RealName::parse(&"n".repeat(201)).is_err());
    }

    #[test]
    fn student_numbers_have_no_spaces() {
        assert!(StudentNumber::parse("s-1001").is_ok());
        assert!(StudentNumber::parse("s 1001").is_err());
        assert!(StudentNumber::parse("").is_err());
    }

    #[test]
    fn a_blank_note_is_no_note_and_a_long_one_is_refused() {
        assert_eq!(Note::parse("  ").unwrap(), None);
        assert_eq!(
            Note::parse(" doctor's note ").unwrap().map(Note::into_inner),
            Some("doctor's note".into())
        );
        assert!(Note::parse(&"n".repeat(1001)).is_err());
    }

    #[test]
    fn check_in_codes_are_trimmed_and_at_most_32_bytes() {
        assert_eq!(CheckinCode::parse(" 042917 ").unwrap().into_inner(), "042917");
        assert!(CheckinCode::parse("   ").is_err());
        assert!(CheckinCode::parse(&"1".repeat(33)).is_err());
    }
}
