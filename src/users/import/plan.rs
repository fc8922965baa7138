//! Deciding what an import does with each row, against the users that exist: create,
//! update, leave unchanged, or refuse the row (and so the whole import).

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::parse::RawRow;
use crate::db::lower;
use crate::domain::text::{Password, RealName, StudentNumber, Username};
use crate::domain::user::{Role, User};
use crate::schema::users;

/// What an import did, or would do, row by row.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    /// Users created (or, on a dry run, that would be).
    pub created: usize,
    /// Existing users whose `real_name` or `student_number` changed.
    pub updated: usize,
    /// Rows that match an existing user exactly.
    pub unchanged: usize,
    /// Passwords hashed for created users (rows without one get an activation code).
    pub hashed: usize,
    /// Every problem, by row; any makes a real import change nothing.
    pub errors: Vec<RowError>,
    /// One entry per valid row.
    pub users: Vec<ImportedUser>,
}

/// A problem with one row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowError {
    /// The data row, counted from 1 (the header is not a row).
    pub row: usize,
    /// The column at fault, if one is.
    pub field: Option<String>,
    /// What is wrong, for a human.
    pub message: String,
}

/// What happens to one row's user. (Its `Debug` never shows the activation code.)
#[derive(Clone, Serialize, ToSchema)]
pub struct ImportedUser {
    /// The data row, counted from 1.
    pub row: usize,
    /// The user's username as stored (an existing user keeps theirs).
    pub username: String,
    pub action: Action,
    /// For a created user without a password: the code for `POST /auth/activate`, shown
    /// only here and only once (never on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_code: Option<String>,
}

/// What an import does with a row's user: `create`, `update` or `unchanged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

impl std::fmt::Debug for ImportedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedUser")
            .field("row", &self.row)
            .field("username", &self.username)
            .field("action", &self.action)
            .field("activation_code", &self.activation_code.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A user to create.
pub struct NewRow {
    pub row: usize,
    pub username: String,
    pub real_name: String,
    pub role: Role,
    pub student_number: Option<String>,
    pub password: Option<Password>,
}

/// A change to an existing user; `None` keeps the stored value.
pub struct UpdateRow {
    pub user_id: i64,
    pub real_name: Option<String>,
    pub student_number: Option<String>,
}

pub struct Plan {
    pub report: ImportReport,
    pub creates: Vec<NewRow>,
    pub updates: Vec<UpdateRow>,
}

/// A row's values, each checked.
struct Valid {
    username: Username,
    real_name: RealName,
    role: Role,
    student_number: Option<StudentNumber>,
    /// Checked only for a user to create: an existing user's password is ignored.
    password: Option<String>,
}

fn validate(row: usize, raw: RawRow, errors: &mut Vec<RowError>) -> Option<Valid> {
    let before = errors.len();
    let mut fail = |field: &str, message: String| {
        errors.push(RowError { row, field: Some(field.to_owned()), message });
    };
    let username = match raw.username.as_deref().map(Username::parse) {
        Some(Ok(username)) => Some(username),
        Some(Err(message)) => {
            fail("username", message);
            None
        }
        None => {
            fail("username", "is required".into());
            None
        }
    };
    let real_name = match raw.real_name.as_deref().map(RealName::parse) {
        Some(Ok(name)) => Some(name),
        Some(Err(message)) => {
            fail("real_name", message);
            None
        }
        None => {
            fail("real_name", "is required".into());
            None
        }
    };
    let role = match raw.role.as_deref().map(|r| r.to_ascii_lowercase().parse::<Role>()) {
        Some(Ok(role)) => Some(role),
        Some(Err(_)) => {
            fail(
                "role",
                format!("`{}` is not a role (admin, teacher or student)", raw.role.unwrap_or_default()),
            );
            None
        }
        None => {
            fail("role", "is required".into());
            None
        }
    };
    let student_number = match raw.student_number.as_deref().map(StudentNumber::parse) {
        Some(Ok(_)) if role.is_some_and(|r| r != Role::Student) => {
            fail("student_number", "only students have a student number".into());
            None
        }
        Some(Ok(number)) => Some(number),
        Some(Err(message)) => {
            fail("student_number", message);
            None
        }
        None => None,
    };
    if errors.len() > before {
        return None;
    }
    Some(Valid {
        username: username?,
        real_name: real_name?,
        role: role?,
        student_number,
        password: raw.password,
    })
}

/// Checks every row and compares it with the stored users, in two queries.
pub fn plan(conn: &mut PgConnection, rows: Vec<RawRow>) -> QueryResult<Plan> {
    let mut errors = Vec::new();
    let mut valid: Vec<(usize, Valid)> = Vec::new();
    let (mut seen_names, mut seen_numbers) = (HashMap::new(), HashMap::new());
    for (index, raw) in rows.into_iter().enumerate() {
        let row = index + 1;
        // Duplicates are found on every row that names a user, even one with other errors,
        // so fixing one error does not reveal the next.
        let mut duplicate = false;
        if let Some(name) = raw.username.as_ref().map(|u| u.to_lowercase()) {
            match seen_names.get(&name) {
                Some(first) => {
                    errors.push(RowError {
                        row,
                        field: Some("username".into()),
                        message: format!("this username is already in row {first}"),
                    });
                    duplicate = true;
                }
                None => {
                    seen_names.insert(name, row);
                }
            }
        }
        if let Some(number) = raw.student_number.clone() {
            match seen_numbers.get(&number) {
                Some(first) => {
                    errors.push(RowError {
                        row,
                        field: Some("student_number".into()),
                        message: format!("this student number is already in row {first}"),
                    });
                    duplicate = true;
                }
                None => {
                    seen_numbers.insert(number, row);
                }
            }
        }
        let checked = validate(row, raw, &mut errors);
        if let (Some(v), false) = (checked, duplicate) {
            valid.push((row, v));
        }
    }

    let names: Vec<String> = valid.iter().map(|(_, v)| v.username.as_str().to_lowercase()).collect();
    let existing: HashMap<String, User> = users::table
        .filter(lower(users::username).eq_any(&names))
        .select(User::as_select())
        .load(conn)?
        .into_iter()
        .map(|user| (user.username.to_lowercase(), user))
        .collect();
    let numbers: Vec<String> =
        valid.iter().filter_map(|(_, v)| v.student_number.clone().map(StudentNumber::into_inner)).collect();
    let holders: HashMap<String, i64> = users::table
        .filter(users::student_number.eq_any(&numbers))
        .select((users::student_number.assume_not_null(), users::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();

    let mut plan = Plan { report: ImportReport::default(), creates: Vec::new(), updates: Vec::new() };
    for (row, v) in valid {
        let found = existing.get(&v.username.as_str().to_lowercase());
        let number = v.student_number.map(StudentNumber::into_inner);
        if let Some(holder) = number.as_ref().and_then(|n| holders.get(n))
            && Some(*holder) != found.map(|u| u.id)
        {
            errors.push(RowError {
                row,
                field: Some("student_number".into()),
                message: "this student number belongs to another user".into(),
            });
            continue;
        }
        let real_name = v.real_name.into_inner();
        match found {
            Some(user) if user.role != v.role => errors.push(RowError {
                row,
                field: Some("role".into()),
                message: format!(
                    "`{}` exists with the role {}, which never changes",
                    user.username, user.role
                ),
            }),
            Some(user) => {
                // An empty cell never clears a stored value; a password is ignored.
                let real_name = (user.real_name != real_name).then_some(real_name);
                let student_number = number.filter(|n| user.student_number.as_ref() != Some(n));
                let action = if real_name.is_none() && student_number.is_none() {
                    plan.report.unchanged += 1;
                    Action::Unchanged
                } else {
                    plan.report.updated += 1;
                    plan.updates.push(UpdateRow { user_id: user.id, real_name, student_number });
                    Action::Update
                };
                plan.report.users.push(ImportedUser {
                    row,
                    username: user.username.clone(),
                    action,
                    activation_code: None,
                });
            }
            None => {
                let password = match v.password.as_deref().map(Password::parse).transpose() {
                    Ok(password) => password,
                    Err(message) => {
                        errors.push(RowError { row, field: Some("password".into()), message });
                        continue;
                    }
                };
                plan.report.created += 1;
                plan.report.users.push(ImportedUser {
                    row,
                    username: v.username.as_str().to_owned(),
                    action: Action::Create,
                    activation_code: None,
                });
                plan.creates.push(NewRow {
                    row,
                    username: v.username.as_str().to_owned(),
                    real_name,
                    role: v.role,
                    student_number: number,
                    password,
                });
            }
        }
    }
    errors.sort_by_key(|e| e.row);
    plan.report.errors = errors;
    Ok(plan)
}
