//! What an identity provider's claims say about a person, by the operator's mapping: the
//! username, real name and student number to use, and the role a first sign-in may create
//! (teacher or student, never admin).

use serde_json::{Map, Value};

use super::text::{RealName, StudentNumber, Username};
use super::user::Role;

/// Which claims carry what, for one provider (`ROLLCALL_OIDC_<ID>_*_CLAIM` and `_VALUES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMap {
    pub username: String,
    pub name: String,
    pub student_number: Option<String>,
    /// The claim whose value (a string or an array of strings) gives the role.
    pub role: Option<String>,
    /// Values of the role claim that make a teacher; they win over student values.
    pub teacher_values: Vec<String>,
    pub student_values: Vec<String>,
}

impl Default for ClaimMap {
    fn default() -> Self {
        Self {
            username: "preferred_username".into(),
            name: "name".into(),
            student_number: None,
            role: None,
            teacher_values: Vec::new(),
            student_values: Vec::new(),
        }
    }
}

/// A person as the claims describe them, each value checked against rollcall's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `None` when the claim is missing or is not a valid rollcall username.
    pub username: Option<Username>,
    /// `None` when the name claim is missing or unusable (a new account then takes its
    /// username as its name; an existing one keeps its name).
    pub real_name: Option<RealName>,
    /// `None` when not mapped, missing or not a valid student number.
    pub student_number: Option<StudentNumber>,
    /// The role a first sign-in would create, if the role claim maps to one.
    pub role: Option<Role>,
}

impl ClaimMap {
    /// The claim names this map reads; a claim missing from the ID token is looked up in the
    /// userinfo answer.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [Some(&self.username), Some(&self.name), self.student_number.as_ref(), self.role.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Reads a profile from all the claims (ID token and userinfo merged, ID token first).
    pub fn profile(&self, claims: &Map<String, Value>) -> Profile {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::trim);
        let username = text(&self.username).and_then(|raw| Username::parse(raw).ok());
        let real_name = text(&self.name).and_then(|raw| RealName::parse(raw).ok());
        let student_number =
            self.student_number.as_deref().and_then(text).and_then(|raw| StudentNumber::parse(raw).ok());
        Profile { username, real_name, student_number, role: self.role(claims) }
    }

    /// Teacher when any value of the role claim is a teacher value, else student when any is
    /// a student value; values compare exactly. Never admin.
    fn role(&self, claims: &Map<String, Value>) -> Option<Role> {
        let values: Vec<&str> = match claims.get(self.role.as_deref()?)? {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => return None,
        };
        let any_of = |wanted: &[String]| values.iter().any(|value| wanted.iter().any(|w| w == value));
        if any_of(&self.teacher_values) {
            Some(Role::Teacher)
        } else if any_of(&self.student_values) {
            Some(Role::Student)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map() -> ClaimMap {
        ClaimMap {
            student_number: Some("student_number".into()),
            role: Some("roles".into()),
            teacher_values: vec!["teacher".into(), "faculty".into()],
            student_values: vec!["student".into()],
            ..ClaimMap::default()
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn teacher_values_win_and_values_compare_exactly() {
        let role = |roles: Value| map().profile(&claims(json!({"roles": roles}))).role;
        assert_eq!(role(json!(["student", "teacher"])), Some(Role::Teacher));
        assert_eq!(role(json!("faculty")), Some(Role::Teacher));
        assert_eq!(role(json!(["student"])), Some(Role::Student));
        assert_eq!(role(json!(["Student", "teachers"])), None);
        assert_eq!(role(json!(["admin", "staff"])), None);
        assert_eq!(role(json!(42)), None);
        assert_eq!(map().profile(&claims(json!({}))).role, None);
        // No role claim configured: no role, whatever the token says.
        let unmapped = ClaimMap::default().profile(&claims(json!({"roles": ["teacher"]})));
        assert_eq!(unmapped.role, None);
    }

    #[test]
    fn values_that_break_rollcall_rules_are_dropped() {
        let profile = map().profile(&claims(json!({
            "preferred_username": "ada@uni.example",
            "name": "  ",
            "student_number": "has space",
        })));
        assert_eq!((profile.username, profile.real_name, profile.student_number), (None, None, None));
    }

    #[test]
    fn a_missing_name_is_no_name() {
        let profile = map().profile(&claims(json!({"preferred_username": "ada.l", "student_number": "S1"})));
        assert_eq!(profile.username.unwrap().as_str(), "ada.l");
        assert_eq!(profile.real_name, None);
        assert_eq!(profile.student_number.unwrap().into_inner(), "S1");
    }

    #[test]
    fn names_lists_the_mapped_claims() {
        assert_eq!(
            map().names().collect::<Vec<_>>(),
            ["preferred_username", "name", "student_number", "roles"]
        );
    }
}
