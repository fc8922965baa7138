//! Paging for lists that can grow without bound.

use super::text::{FieldError, Invalid, check};

/// `limit`/`offset` for lists that can grow without bound.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many items to return (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// How many items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

impl Page {
    /// Validated (limit, offset).
    pub fn parse(self) -> Result<(i64, i64), Invalid> {
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        let mut errors = Vec::new();
        if !(1..=1000).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 1000"));
        }
        if offset < 0 {
            errors.push(FieldError::new("offset", "must not be negative"));
        }
        check(errors)?;
        Ok((limit, offset))
    }
}
