//! Authentication: login, access tokens, password hashing, and the extractors that turn a
//! bearer token into a user of the right role.

pub mod extract;
pub mod jwt;
pub mod login;
pub mod password;
