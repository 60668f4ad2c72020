//! `docs/errcodes.md` is generated from the code table; this test fails when they drift apart.
//! Regenerate with `SOUK_UPDATE_DOCS=1 cargo test -p souk-types --test errcode_docs`.

use souk_types::Code;

fn render() -> String {
    let mut out = String::from(
        "# Error codes\n\n\
         Generated from `crates/souk-types/src/codes.rs` by `crates/souk-types/tests/errcode_docs.rs`; do not edit.\n\n\
         WeChat-compatible routes (`/cgi-bin/...`, `/wxa/...`) answer HTTP 200 with `{\"errcode\": <errcode>, \"errmsg\": \"<message> (<detail>) rid: <request id>\"}`.\n\
         The client API uses the `client` column as `errCode`; souk's own APIs (admin, client) answer with the HTTP status and\n\
         `{\"errCode\", \"errMsg\", \"requestID\"}`, where the admin API's `errCode` is the name.\n\
         The cloud gateway (`cloud-gateway.md`) names its own failures with the stable string of the `errorCode` column\n\
         (as `errorCode`, or `errCode` on the MTOP door); an upstream's own `success: false` is passed on unchanged.\n\n\
         | name | errcode | client | HTTP | errorCode | message |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for code in Code::ALL {
        let error_code = if code.is_cloud() {
            format!("`{}`", code.error_code())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            code.name(),
            code.errcode(),
            code.client_code(),
            code.http_status(),
            error_code,
            code.message()
        ));
    }
    out
}

#[test]
fn errcode_docs_match_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errcodes.md");
    let expected = render();
    if std::env::var_os("SOUK_UPDATE_DOCS").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/errcodes.md is out of date: run SOUK_UPDATE_DOCS=1 cargo test -p souk-types --test errcode_docs"
    );
}
