//! Integration tests: the server refuses requests from foreign web pages (`Origin`) and
//! requests addressed to a foreign name (`Host`, DNS rebinding), on every service.

use super::common::*;

#[tokio::test]
async fn foreign_host_and_origin_are_refused_on_every_service_and_loopback_passes() {
    let ts = TestServer::start().await;
    let anon = ts.server.anon_key.clone();
    for path in ["/rest/v1/challenges?select=id", "/auth/v1/settings", "/realtime/v1/api/broadcast"] {
        let url = ts.url(path);
        let host =
            ts.http.get(&url).header("apikey", &anon).header("Host", "evil.example").send().await.expect("request");
        assert_eq!(host.status().as_u16(), 403, "{path}: a foreign Host must be refused");
        let origin = ts
            .http
            .get(&url)
            .header("apikey", &anon)
            .header("Origin", "https://evil.example")
            .send()
            .await
            .expect("request");
        assert_eq!(origin.status().as_u16(), 403, "{path}: a foreign Origin must be refused");
        let (_, body) = json_of(origin).await;
        assert_eq!(body["message"], "Origin not allowed");
    }
    let ok = ts
        .http
        .get(ts.url("/rest/v1/challenges?select=id"))
        .header("apikey", &anon)
        .header("Origin", "http://localhost:1420")
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status().as_u16(), 200, "a loopback page (the desktop webview in dev) is allowed");
    ts.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrade_from_a_foreign_origin_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let ts = TestServer::start().await;
    let mut req = ts.ws_url("2.0.0", &ts.server.anon_key).into_client_request().expect("request");
    req.headers_mut().insert("Origin", "https://evil.example".parse().expect("header"));
    let err = tokio_tungstenite::connect_async(req).await.expect_err("upgrade must be refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status().as_u16(), 403),
        other => panic!("expected an HTTP 403 refusal, got {other}"),
    }
    ts.shutdown().await;
}
