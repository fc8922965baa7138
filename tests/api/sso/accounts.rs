//! Which account a sign-in reaches: never one matched by username or e-mail alone, never an
//! admin, only a role the claims map to; linking only when the operator allows it.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Sso, exchange};
use crate::helpers::PASSWORD;

async fn local_user(sso: &Sso, username: &str, role: &str, student_number: Option<&str>) -> Value {
    let body = json!({
        "username": username, "password": PASSWORD, "role": role,
        "real_name": format!("{username} Local"), "student_number": student_number,
    });
    sso.app.send(Method::POST, "/api/v1/users", Some(&sso.app.admin_token), Some(body)).await.ok(201).clone()
}

#[tokio::test]
async fn a_taken_username_or_matching_email_never_takes_the_account_over() {
    let sso = Sso::start().await;
    let local = local_user(&sso, "ada", "student", Some("S1")).await;
    sso.person("ada", json!(["student"]), json!({"student_number": "S1"})).await;
    assert_eq!(sso.sign_in("ada").await, Err("no_account".into()));
    // An admin's username, with a claim that would make a teacher: still nothing.
    sso.person("admin", json!(["teacher"]), json!({})).await;
    assert_eq!(sso.sign_in("admin").await, Err("no_account".into()));
    assert_eq!(sso.counts(), (2, 0));
    // The local account is untouched and logs in with its password.
    let login = sso.app.login("ada", PASSWORD).await;
    assert_eq!(login.ok(200)["user"]["id"], local["id"]);
    assert_eq!(login.body["user"]["real_name"], "ada Local");
}

#[tokio::test]
async fn claims_that_map_to_no_role_or_no_valid_username_make_no_account() {
    let sso = Sso::start().await;
    sso.person("stan", json!(["staff"]), json!({})).await;
    sso.person("root", json!(["admin"]), json!({})).await;
    sso.person("case", json!(["Student"]), json!({})).await;
    sso.person("nora", json!(null), json!({})).await;
    sso.provider
        .account(json!({"sub": "sub-mail", "password": "mail-password", "login": "mail",
                        "preferred_username": "mail@uni.test", "roles": ["student"]}))
        .await;
    for login in ["stan", "root", "case", "nora", "mail"] {
        assert_eq!(sso.sign_in(login).await, Err("no_account".into()), "{login}");
    }
    assert_eq!(sso.counts(), (1, 0));
}

#[tokio::test]
async fn a_disabled_user_is_refused_as_such() {
    let sso = Sso::start().await;
    sso.person("dan", json!(["teacher"]), json!({})).await;
    let user = sso.log_in("dan").await["user"].clone();
    let path = format!("/api/v1/users/{}", user["id"]);
    let disable =
        sso.app.send(Method::PATCH, &path, Some(&sso.app.admin_token), Some(json!({"disabled": true}))).await;
    disable.ok(200);
    assert_eq!(sso.sign_in("dan").await, Err("account_disabled".into()));
}

#[tokio::test]
async fn link_existing_username_links_an_account_of_the_same_role_once() {
    let sso = Sso::start_with(&[], &[("ROLLCALL_OIDC_UNI_LINK_EXISTING", "username")]).await;
    let local = local_user(&sso, "lin", "student", None).await;
    sso.person("lin", json!(["student"]), json!({"name": "Lin From Uni", "student_number": "S55"})).await;
    let answer = sso.log_in("lin").await;
    assert_eq!(answer["user"]["id"], local["id"]);
    assert_eq!(
        (answer["user"]["real_name"].as_str(), answer["user"]["student_number"].as_str()),
        (Some("Lin From Uni"), Some("S55"))
    );
    // The password still works: linking adds a way in.
    sso.app.login("lin", PASSWORD).await.ok(200);

    // Another identity with the same username: the account already has one here.
    sso.provider
        .account(json!({"sub": "sub-lin-2", "password": "lin2-password", "login": "lin2",
                        "preferred_username": "lin", "roles": ["student"]}))
        .await;
    assert_eq!(sso.sign_in("lin2").await, Err("no_account".into()));
    // A different role, or an admin: no link.
    local_user(&sso, "tia", "teacher", None).await;
    sso.person("tia", json!(["student"]), json!({})).await;
    assert_eq!(sso.sign_in("tia").await, Err("no_account".into()));
    sso.person("admin", json!(["teacher"]), json!({})).await;
    assert_eq!(sso.sign_in("admin").await, Err("no_account".into()));
    assert_eq!(sso.counts(), (3, 1));
}

#[tokio::test]
async fn link_existing_student_number_links_by_the_number_claim() {
    let sso = Sso::start_with(&[], &[("ROLLCALL_OIDC_UNI_LINK_EXISTING", "student_number")]).await;
    let local = local_user(&sso, "s.local", "student", Some("S777")).await;
    sso.person("sam", json!(["student"]), json!({"student_number": "S777"})).await;
    let answer = sso.log_in("sam").await;
    assert_eq!(answer["user"]["id"], local["id"]);
    assert_eq!(answer["user"]["username"], "s.local");
    // Later sign-ins find it by identity.
    let code = sso.sign_in("sam").await.unwrap();
    assert_eq!(exchange(&sso.app, &code).await["user"]["id"], local["id"]);
    assert_eq!(sso.counts(), (2, 1));
}
