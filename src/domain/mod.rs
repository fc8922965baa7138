//! What every feature shares, with no I/O and no HTTP: users and roles, validated input,
//! the check-in window and its rotating code, a student's status, the throttle rules, and
//! time zones with the lesson series laid out in them.
//! Features build on this layer; it depends on nothing but `schema` (for row mappings).

pub mod code;
pub mod enrolment;
pub mod identity;
pub mod lesson;
pub mod page;
pub mod policy;
pub mod series;
pub mod settings;
pub mod status;
pub mod text;
pub mod throttle;
pub mod user;
pub mod window;
pub mod zone;

/// Declares a Rust enum stored as TEXT (its values guarded by a CHECK in the migration)
/// and sent as the same snake_case string in JSON.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            utoipa::ToSchema, diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        // `rename_all` (not a per-variant rename) is what the OpenAPI generator reads; a
        // unit test checks each value's JSON name equals its `as_str`.
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not a valid {}", stringify!($name))),
                }
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                text.parse().map_err(Into::into)
            }
        }
    };
}
pub(crate) use text_enum;
