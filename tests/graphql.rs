//! GraphQL end to end (SPEC §5): the real gateway against real backends on loopback ports that
//! count what they receive, so every test shows which calls a selection made.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A library's reader app: another domain than the shipped shop.
const READER: &str = r#"
client: reader_app
base_path: /reader
endpoints:
  book_page:
    get: /books/{id}
    auth: optional
    query:
      lang: { type: String, default: en }
    calls:
      book:    { service: catalog, get: "/books/{$.args.id}", query: { lang: "$.args.lang" } }
      author:  { service: authors, get: "/authors/{$.book.authorId}" }
      ratings: { service: ratings, get: "/ratings/{$.args.id}", optional: true }
      copies:
        each: "$.book.editions[*]"
        attach: copies
        service: stock
        get: "/copies/{@.isbn}"
        optional: true
    response:
      title: "$.book.title"
      authorName: "$.author.name"
      stars: "$.ratings.average"
      editions:
        each: "$.book.editions[*]"
        fields: { isbn: "@.isbn", onShelf: "@.copies.count" }
  author_card:
    get: /authors/{id}
    headers:
      language: { header: X-Reader-Language, type: String }
    calls:
      author: { service: authors, get: "/authors/{$.args.id}", headers: { x-language: "$.args.language" } }
    response:
      name: "$.author.name"
  shelf:
    get: /shelf
    calls:
      loans: { service: loans, get: "/loans/{$.auth.sub}" }
    response:
      count: "length($.loans.items)"
      owner: "$.loans.owner"
  borrow:
    post: /loans
    body:
      isbn: ID!
    calls:
      loan: { service: loans, post: "/loans", body: { isbn: "$.args.isbn" }, errors: pass }
    response:
      dueDate: "$.loan.due"
"#;

struct Library {
    catalog: Backend,
    authors: Backend,
    ratings: Backend,
    stock: Backend,
    loans: Backend,
    gw: Gateway,
}

fn facade_yaml(services: &[(&str, String)], graphql: &str) -> String {
    let mut s = String::from("services:\n");
    for (name, url) in services {
        s.push_str(&format!("  {name}:\n    url: {url}\n    timeout: 2s\n"));
    }
    s.push_str(AUTH);
    s.push_str(graphql);
    s
}

async fn library(graphql: &str) -> Library {
    let catalog = Backend::start(|s| {
        if s.uri.starts_with("/books/missing") {
            return Reply::status(404, json!({"error": "no such book"}));
        }
        Reply::json(json!({
            "title": "Dune", "authorId": "a1",
            "editions": [{"isbn": "i1"}, {"isbn": "i2"}]
        }))
    })
    .await;
    let authors = Backend::fixed(json!({"name": "Frank Herbert"})).await;
    let ratings = Backend::fixed(json!({"average": 4.5})).await;
    let stock = Backend::start(|s| Reply::json(json!({"count": if s.uri.ends_with("i1") { 3 } else { 0 }}))).await;
    let loans = Backend::start(|s| {
        if s.method == "POST" {
            if String::from_utf8_lossy(&s.body).contains("taken") {
                return Reply::status(409, json!({"reason": "all copies are out"}));
            }
            return Reply::json(json!({"due": "2027-01-01"}));
        }
        Reply::json(json!({"items": [1, 2], "owner": "u1"}))
    })
    .await;
    let yaml = facade_yaml(
        &[
            ("catalog", catalog.url()),
            ("authors", authors.url()),
            ("ratings", ratings.url()),
            ("stock", stock.url()),
            ("loans", loans.url()),
        ],
        graphql,
    );
    let p = Project::new(&yaml, &[("reader.yaml", READER)]);
    let gw = Gateway::start(p.plan(&[])).await;
    Library {
        catalog,
        authors,
        ratings,
        stock,
        loans,
        gw,
    }
}

impl Library {
    fn counts(&self) -> [usize; 5] {
        [
            self.catalog.count(),
            self.authors.count(),
            self.ratings.count(),
            self.stock.count(),
            self.loans.count(),
        ]
    }
}

/// POSTs an operation; returns the status and the JSON body.
async fn gql(gw: &Gateway, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    let mut req = client()
        .post(gw.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_selection_calls_only_the_backends_its_fields_need() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let t = Some(t.as_str());
    let (s, body) = gql(
        &lib.gw,
        t,
        r#"{ readerApp { bookPage(id: "b1") { title } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, json!({"data": {"readerApp": {"bookPage": {"title": "Dune"}}}}));
    assert_eq!(lib.counts(), [1, 0, 0, 0, 0], "only the catalog is called");

    // A field of a call that waits for another: both are made, nothing else.
    let (_, body) = gql(
        &lib.gw,
        t,
        r#"{ readerApp { bookPage(id: "b1") { authorName } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["readerApp"]["bookPage"]["authorName"], "Frank Herbert");
    assert_eq!(lib.counts(), [2, 1, 0, 0, 0]);

    // `editions { isbn }` reads the book alone; `onShelf` reads the attached `copies` call.
    let (_, body) = gql(
        &lib.gw,
        t,
        r#"{ readerApp { bookPage(id: "b1") { editions { isbn } } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["readerApp"]["bookPage"]["editions"],
        json!([{"isbn": "i1"}, {"isbn": "i2"}])
    );
    assert_eq!(
        lib.counts(),
        [3, 1, 0, 0, 0],
        "the attached call is not made for isbn alone"
    );
    let (_, body) = gql(
        &lib.gw,
        t,
        r#"{ readerApp { bookPage(id: "b1") { editions { onShelf } } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["readerApp"]["bookPage"]["editions"],
        json!([{"onShelf": 3}, {"onShelf": 0}])
    );
    assert_eq!(lib.counts(), [4, 1, 0, 2, 0], "attach: one stock call per edition");
}

#[tokio::test]
async fn fragments_variables_and_directives_decide_the_calls() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let q = r#"
        query Page($id: ID!, $hideAuthor: Boolean!, $withStars: Boolean!) {
          readerApp {
            bookPage(id: $id) {
              ...Basics
              ... on ReaderAppBookPage { stars @include(if: $withStars) }
              authorName @skip(if: $hideAuthor)
            }
          }
        }
        fragment Basics on ReaderAppBookPage { title }
    "#;
    let (s, body) = gql(
        &lib.gw,
        Some(&t),
        q,
        json!({"id": "b1", "hideAuthor": true, "withStars": true}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["data"]["readerApp"]["bookPage"],
        json!({"title": "Dune", "stars": 4.5})
    );
    assert_eq!(lib.counts(), [1, 0, 1, 0, 0], "a skipped field's call is not made");
    let (_, body) = gql(
        &lib.gw,
        Some(&t),
        q,
        json!({"id": "b1", "hideAuthor": false, "withStars": false}),
    )
    .await;
    assert_eq!(
        body["data"]["readerApp"]["bookPage"],
        json!({"title": "Dune", "authorName": "Frank Herbert"})
    );
    assert_eq!(lib.counts(), [2, 1, 1, 0, 0]);
}

#[tokio::test]
async fn aliases_share_identical_calls_across_the_operation() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let q = r#"{ readerApp {
        a: bookPage(id: "b1") { title }
        b: bookPage(id: "b1") { authorName }
        c: bookPage(id: "b2") { title }
        shelf { count }
    } }"#;
    let (s, body) = gql(&lib.gw, Some(&t), q, json!({})).await;
    assert_eq!(s, 200, "{body}");
    let ns = &body["data"]["readerApp"];
    assert_eq!(ns["a"], json!({"title": "Dune"}));
    assert_eq!(ns["b"], json!({"authorName": "Frank Herbert"}));
    assert_eq!(ns["c"], json!({"title": "Dune"}));
    assert_eq!(ns["shelf"], json!({"count": 2}));
    // b1 once for `a` and `b` together, b2 once; one author call; one loans call.
    assert_eq!(lib.counts(), [2, 1, 0, 0, 1]);
    let paths: Vec<String> = lib.catalog.seen().iter().map(|s| s.uri.clone()).collect();
    assert!(paths.contains(&"/books/b1?lang=en".to_string()), "{paths:?}");
}

#[tokio::test]
async fn identical_calls_of_different_endpoints_run_once_per_operation() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    // bookPage's `author` call (after `book`) and authorCard's call are both GET /authors/a1.
    let q = r#"{ readerApp { bookPage(id: "b1") { authorName } authorCard(id: "a1") { name } } }"#;
    let (_, body) = gql(&lib.gw, Some(&t), q, json!({})).await;
    assert_eq!(
        body["data"]["readerApp"],
        json!({"bookPage": {"authorName": "Frank Herbert"}, "authorCard": {"name": "Frank Herbert"}})
    );
    assert_eq!(lib.authors.count(), 1, "one backend request for both endpoints");
    // Another caller is another call (SPEC §4.3: the identity is part of the key).
    let other = token("u2", json!({}));
    gql(&lib.gw, Some(&other), q, json!({})).await;
    assert_eq!(lib.authors.count(), 2);
}

#[tokio::test]
async fn header_parameters_come_from_the_http_request() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let resp = client()
        .post(lib.gw.url("/graphql"))
        .bearer_auth(&t)
        .header("x-reader-language", "fr")
        .json(&json!({"query": r#"{ readerApp { authorCard(id: "a1") { name } } }"#}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["readerApp"]["authorCard"]["name"], "Frank Herbert");
    assert_eq!(lib.authors.seen()[0].header("x-language"), Some("fr"));
    // Not an argument of the field.
    let (_, body) = gql(
        &lib.gw,
        Some(&t),
        r#"{ readerApp { authorCard(id: "a1", language: "de") { name } } }"#,
        json!({}),
    )
    .await;
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn the_same_response_key_twice_merges_the_selections() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let q = r#"{ readerApp { bookPage(id: "b1") { title } bookPage(id: "b1") { authorName } } }"#;
    let (_, body) = gql(&lib.gw, Some(&t), q, json!({})).await;
    assert_eq!(
        body["data"]["readerApp"]["bookPage"],
        json!({"title": "Dune", "authorName": "Frank Herbert"})
    );
    assert_eq!(lib.counts(), [1, 1, 0, 0, 0]);
}

#[tokio::test]
async fn query_endpoints_run_concurrently_and_mutations_in_order() {
    let order: Arc<Mutex<Vec<String>>> = Arc::default();
    let o = order.clone();
    let slow = Backend::start(move |s| {
        o.lock().unwrap().push(String::from_utf8_lossy(&s.body).to_string());
        Reply::json(json!({"v": 1})).after(Duration::from_millis(500))
    })
    .await;
    let comp = r#"
client: app
base_path: /app
endpoints:
  one:
    get: /one
    calls: { a: { service: slow, get: /a } }
    response: { v: "$.a.v" }
  two:
    get: /two
    calls: { b: { service: slow, get: /b } }
    response: { v: "$.b.v" }
  write:
    post: /write
    body: { n: Int! }
    calls: { w: { service: slow, post: /w, body: { n: "$.args.n" } } }
    response: { v: "$.w.v" }
"#;
    let p = Project::new(&facade_yaml(&[("slow", slow.url())], ""), &[("app.yaml", comp)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    let started = Instant::now();
    let (_, body) = gql(&gw, Some(&t), "{ app { one { v } two { v } } }", json!({})).await;
    let took = started.elapsed();
    assert_eq!(body["data"]["app"], json!({"one": {"v": 1}, "two": {"v": 1}}));
    // One after the other would be 1000 ms: the margin is wide for a loaded two-core machine.
    assert!(took < Duration::from_millis(900), "two 500 ms endpoints took {took:?}");

    let started = Instant::now();
    let (_, body) = gql(
        &gw,
        Some(&t),
        "mutation { app { first: write(n: 1) { v } second: write(n: 2) { v } } }",
        json!({}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(body["data"]["app"], json!({"first": {"v": 1}, "second": {"v": 1}}));
    assert!(took >= Duration::from_millis(1000), "two mutations took {took:?}");
    let bodies: Vec<String> = order
        .lock()
        .unwrap()
        .iter()
        .filter(|b| !b.is_empty())
        .cloned()
        .collect();
    assert_eq!(bodies, vec![r#"{"n":1}"#.to_string(), r#"{"n":2}"#.to_string()]);
}

#[tokio::test]
async fn failed_calls_become_errors_at_the_endpoint_field_path() {
    let lib = library("").await;
    let broken_ratings = Backend::start(|_| Reply::status(500, json!({"secret": "internal"}))).await;
    let yaml = facade_yaml(
        &[
            ("catalog", lib.catalog.url()),
            ("authors", lib.authors.url()),
            ("ratings", broken_ratings.url()),
            ("stock", lib.stock.url()),
            ("loans", lib.loans.url()),
        ],
        "",
    );
    let p = Project::new(&yaml, &[("reader.yaml", READER)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    let q = r#"{ readerApp {
        page: bookPage(id: "b1") { title stars }
        gone: bookPage(id: "missing") { title }
        shelf { count }
    } }"#;
    let (s, body) = gql(&gw, Some(&t), q, json!({})).await;
    assert_eq!(s, 200, "{body}");
    let ns = &body["data"]["readerApp"];
    // An optional call failed: its field is null, the endpoint answers, one error at its path.
    assert_eq!(ns["page"], json!({"title": "Dune", "stars": null}));
    // A required call failed: the endpoint field is null; the rest of the operation answers.
    assert_eq!(ns["gone"], Value::Null);
    assert_eq!(ns["shelf"], json!({"count": 2}));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    let partial = errors
        .iter()
        .find(|e| e["path"] == json!(["readerApp", "page"]))
        .unwrap();
    assert_eq!(partial["extensions"]["code"], "UPSTREAM_FAILED");
    assert_eq!(partial["extensions"]["call"], "ratings");
    assert_eq!(partial["extensions"]["service"], "ratings");
    let failed = errors
        .iter()
        .find(|e| e["path"] == json!(["readerApp", "gone"]))
        .unwrap();
    assert_eq!(failed["extensions"]["code"], "NOT_FOUND");
    assert_eq!(failed["extensions"]["call"], "book");
    let text = body.to_string();
    assert!(!text.contains("127.0.0.1") && !text.contains("secret"), "{text}");
}

#[tokio::test]
async fn errors_pass_puts_the_backend_body_under_details() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let (_, body) = gql(
        &lib.gw,
        Some(&t),
        r#"mutation { readerApp { ok: borrow(isbn: "i1") { dueDate } no: borrow(isbn: "taken") { dueDate } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["readerApp"]["ok"], json!({"dueDate": "2027-01-01"}));
    assert_eq!(body["data"]["readerApp"]["no"], Value::Null);
    let e = &body["errors"][0];
    assert_eq!(e["path"], json!(["readerApp", "no"]));
    assert_eq!(e["extensions"]["code"], "UPSTREAM_REJECTED");
    assert_eq!(e["extensions"]["details"], json!({"reason": "all copies are out"}));
}

#[tokio::test]
async fn each_endpoint_field_enforces_its_own_access() {
    let comp = r#"
client: app
base_path: /app
endpoints:
  public:
    get: /public
    auth: none
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  mine:
    get: /mine
    auth: required
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  admin:
    get: /admin
    roles: [admin]
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
"#;
    let data = Backend::fixed(json!({"v": 7})).await;
    let p = Project::new(
        &facade_yaml(&[("data", data.url())], "graphql:\n  auth: optional\n"),
        &[("app.yaml", comp)],
    );
    let gw = Gateway::start(p.plan(&[])).await;
    let q = "{ app { public { v } mine { v } admin { v } again: admin { v } } }";
    // Anonymous: the public field answers, the others are refused one by one.
    let (s, body) = gql(&gw, None, q, json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        body["data"]["app"],
        json!({"public": {"v": 7}, "mine": null, "admin": null, "again": null})
    );
    let codes: Vec<(&Value, &Value)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["path"], &e["extensions"]["code"]))
        .collect();
    assert_eq!(codes.len(), 3, "every alias counts: {body}");
    assert!(codes.contains(&(&json!(["app", "mine"]), &json!("UNAUTHENTICATED"))));
    assert!(codes.contains(&(&json!(["app", "again"]), &json!("UNAUTHENTICATED"))));
    // A token without the role: FORBIDDEN on the admin fields only.
    let t = token("u1", json!({"role": "reader"}));
    let (_, body) = gql(&gw, Some(&t), q, json!({})).await;
    assert_eq!(body["data"]["app"]["mine"], json!({"v": 7}));
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    let t = token("u2", json!({"role": "admin"}));
    let (_, body) = gql(&gw, Some(&t), q, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Only answered fields reached the backend, identical GETs once per operation and caller:
    // 1 (anonymous), then 1 + 1 (anonymous, u1), then 1 + 1 (anonymous, u2 for three fields).
    assert_eq!(data.count(), 5);
}

#[tokio::test]
async fn graphql_auth_required_answers_401_at_http_level() {
    let lib = library("graphql:\n  auth: required\n").await;
    let (s, body) = gql(&lib.gw, None, "{ __typename }", json!({})).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(body["error"], "unauthorized");
    let t = token("u1", json!({}));
    let (s, body) = gql(&lib.gw, Some(&t), "{ __typename }", json!({})).await;
    assert_eq!((s, body), (200, json!({"data": {"__typename": "Query"}})));
}

/// A book service's OpenAPI document: required and optional fields, lists of strings and of objects.
const BOOKS_OPENAPI: &str = r#"
openapi: 3.0.3
info: { title: books, version: "1" }
paths:
  /books/{id}:
    get:
      responses:
        "200":
          description: a book
          content:
            application/json:
              schema:
                type: object
                required: [title, pages]
                properties:
                  title: { type: string }
                  pages: { type: integer }
                  tags: { type: array, items: { type: string } }
                  parts:
                    type: array
                    items:
                      type: object
                      required: [n]
                      properties: { n: { type: integer }, label: { type: string } }
"#;

/// The gateway for one composition over a `books` service typed by `BOOKS_OPENAPI`.
async fn books_gateway(books: &Backend, composition: &str) -> Gateway {
    let yaml = format!(
        "services:\n  books:\n    url: {}\n    schema: books.yaml\n{AUTH}",
        books.url()
    );
    let p = Project::new(&yaml, &[("app.yaml", composition)]).schema("books.yaml", BOOKS_OPENAPI);
    Gateway::start(p.plan(&[])).await
}

#[tokio::test]
async fn values_that_do_not_fit_their_type_are_field_errors() {
    let comp = r#"
client: app
base_path: /app
endpoints:
  book:
    get: /books/{id}
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response: { title: "$.b.title", pages: "$.b.pages", tags: "$.b.tags" }
"#;
    let books = Backend::start(|s| {
        if s.uri.ends_with("/bad") {
            Reply::json(json!({"title": "X", "pages": "many", "tags": ["a"]}))
        } else {
            Reply::json(json!({"title": "X", "pages": 300, "tags": ["a", "b"]}))
        }
    })
    .await;
    let gw = books_gateway(&books, comp).await;
    let t = token("u1", json!({}));
    let (_, body) = gql(
        &gw,
        Some(&t),
        r#"{ app { book(id: "ok") { title pages tags } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["app"]["book"],
        json!({"title": "X", "pages": 300, "tags": ["a", "b"]})
    );
    let (_, body) = gql(
        &gw,
        Some(&t),
        r#"{ app { book(id: "bad") { title pages } } }"#,
        json!({}),
    )
    .await;
    // `pages: Int!` got a string: an error at the field, null propagated to the nullable endpoint.
    assert_eq!(body["data"]["app"]["book"], Value::Null, "{body}");
    let e = &body["errors"][0];
    assert_eq!(e["path"], json!(["app", "book", "pages"]));
    assert!(!e["message"].as_str().unwrap().contains("many"), "never the value: {e}");
}

#[tokio::test]
async fn requests_over_http_follow_graphql_over_http() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let url = lib.gw.url("/graphql");
    let c = client();
    // GET runs queries.
    let resp = c
        .get(format!(
            "{url}?query=%7B%20readerApp%20%7B%20shelf%20%7B%20count%20%7D%20%7D%20%7D"
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["readerApp"]["shelf"]["count"], 2);
    // A mutation over GET: 405 with Allow, before validation (the field does not even exist).
    let resp = c
        .get(format!("{url}?query=mutation%20%7B%20nope%20%7D"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    assert_eq!(body["message"], "a mutation cannot be sent with GET: send it with POST");
    assert_eq!(lib.loans.count(), 1);
    // application/graphql-response+json: 400 and no `data` for parse and validation errors.
    for doc in ["{", "{ nope }"] {
        let resp = c
            .post(&url)
            .bearer_auth(&t)
            .header("accept", "application/graphql-response+json")
            .json(&json!({"query": doc}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{doc}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json"));
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("data").is_none() && body["errors"].is_array(), "{body}");
    }
    // application/json: 200 with errors, no data.
    let resp = c
        .post(&url)
        .bearer_auth(&t)
        .header("accept", "application/json")
        .json(&json!({"query": "{ nope }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("data").is_none() && body["errors"].is_array(), "{body}");
    // Other Accept: 406. Other Content-Type: 415. A batch: 400.
    let resp = c
        .post(&url)
        .bearer_auth(&t)
        .header("accept", "text/plain")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    let resp = c
        .post(&url)
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body(r#"{"query": "{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = c
        .post(&url)
        .bearer_auth(&t)
        .json(&json!([{"query": "{ __typename }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("batch"), "{body}");
    // Variables that do not coerce: no data.
    let (s, body) = gql(
        &lib.gw,
        Some(&t),
        "query($id: ID!) { readerApp { bookPage(id: $id) { title } } }",
        json!({"id": null}),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.get("data").is_none(), "{body}");
    // An automatic persisted query sent by its hash alone (Apollo's APQ): not kept in this
    // version, which the answer says as Apollo clients expect, so they send the document.
    let apq = json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}});
    for (accept, status) in [("application/json", 200), ("application/graphql-response+json", 400)] {
        let resp = c
            .post(&url)
            .bearer_auth(&t)
            .header("accept", accept)
            .json(&apq)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{accept}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"errors": [{"message": "PersistedQueryNotSupported", "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"}}]})
        );
    }
    let resp = c
        .get(format!(
            "{url}?extensions=%7B%22persistedQuery%22%3A%7B%22version%22%3A1%2C%22sha256Hash%22%3A%22ab%22%7D%7D"
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotSupported", "{body}");
    // A subscription (none in this version) is refused once, not once per rule that sees it.
    let (_, body) = gql(
        &lib.gw,
        Some(&t),
        "subscription { readerApp { shelf { count } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(body.get("data").is_none(), "{body}");
    // Request errors come in document order, the same every time, and at most a hundred of them.
    let unused: Vec<String> = (0..150).map(|i| format!("$v{i}: Int")).collect();
    let doc = format!("query({}) {{ __typename }}", unused.join(", "));
    let (_, body) = gql(&lib.gw, Some(&t), &doc, json!({})).await;
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 101, "{body}");
    let columns: Vec<u64> = errors[..100]
        .iter()
        .map(|e| e["locations"][0]["column"].as_u64().unwrap_or(0))
        .collect();
    assert!(columns.windows(2).all(|w| w[0] < w[1]), "{columns:?}");
    assert_eq!(errors[0]["message"], "Variable \"$v0\" is not used", "{body}");
    assert_eq!(
        errors[100]["message"],
        "Too many validation errors, error limit reached. Validation aborted."
    );
    // The hash beside the document: the document runs.
    let mut with_query = apq.clone();
    with_query["query"] = json!("{ __typename }");
    let resp = c.post(&url).bearer_auth(&t).json(&with_query).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"data": {"__typename": "Query"}}));
}

#[tokio::test]
async fn only_variable_free_operations_that_passed_every_rule_skip_validation_later() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let plan = lib.gw.state.plan();
    let remembered = |text: &str| {
        plan.graphql_schema
            .as_ref()
            .is_some_and(|s| s.validated.contains_key(&(Arc::from(text), None)))
    };
    let q = r#"{ readerApp { bookPage(id: "b1") { title } } }"#;
    let first = gql(&lib.gw, Some(&t), q, json!({})).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["data"]["readerApp"]["bookPage"], json!({"title": "Dune"}));
    assert!(
        remembered(q),
        "a variable-free operation that ran is remembered as valid"
    );
    let again = gql(&lib.gw, Some(&t), q, json!({})).await;
    assert_eq!(again, first, "the second run (limits only) answers the same");

    // A document that fails a rule is refused every time and never remembered.
    let bad = r#"{ readerApp { bookPage(id: "b1") { nope } } }"#;
    for _ in 0..2 {
        let (_, body) = gql(&lib.gw, Some(&t), bad, json!({})).await;
        assert!(body.get("data").is_none(), "{body}");
    }
    assert!(!remembered(bad));

    // With variables, values of the wrong type are refused after a good run of the same text
    // (Facade's executor takes only plainly valid values; the rest is validated again).
    let qv = r#"query($id: ID!) { readerApp { bookPage(id: $id) { title } } }"#;
    let (_, body) = gql(&lib.gw, Some(&t), qv, json!({"id": "b1"})).await;
    assert_eq!(
        body["data"]["readerApp"]["bookPage"],
        json!({"title": "Dune"}),
        "{body}"
    );
    let (_, body) = gql(&lib.gw, Some(&t), qv, json!({"id": {"not": "an id"}})).await;
    assert!(body.get("data").is_none(), "{body}");
    let (_, body) = gql(&lib.gw, Some(&t), qv, json!({})).await;
    assert!(body.get("data").is_none(), "a required variable missing: {body}");

    // The depth limit holds on the fast path too: a remembered operation is within it by then,
    // and one beyond it is never remembered.
    let lib = library("graphql:\n  max_depth: 3\n").await;
    let deep = r#"{ readerApp { bookPage(id: "b1") { editions { isbn } } } }"#;
    for _ in 0..2 {
        let (_, body) = gql(&lib.gw, Some(&t), deep, json!({})).await;
        assert!(body.get("data").is_none(), "depth 4 > 3: {body}");
    }
}

#[tokio::test]
async fn depth_complexity_and_introspection_limits_hold() {
    let lib = library("graphql:\n  max_depth: 3\n  max_complexity: 5\n  introspection: false\n").await;
    let t = token("u1", json!({}));
    let (_, body) = gql(
        &lib.gw,
        Some(&t),
        r#"{ readerApp { bookPage(id: "b1") { editions { isbn } } } }"#,
        json!({}),
    )
    .await;
    assert!(body.get("data").is_none(), "depth 4 > 3: {body}");
    let many = "{ readerApp { a: shelf { count } b: shelf { count } c: shelf { count } } }";
    let (_, body) = gql(&lib.gw, Some(&t), many, json!({})).await;
    assert!(body.get("data").is_none(), "aliases count toward complexity: {body}");
    let (_, body) = gql(&lib.gw, Some(&t), "{ __schema { types { name } } }", json!({})).await;
    assert!(body.get("data").is_none(), "introspection is off: {body}");
    let (_, body) = gql(&lib.gw, Some(&t), r#"{ __type(name: "Query") { name } }"#, json!({})).await;
    assert!(body.get("data").is_none(), "introspection is off: {body}");
    assert_eq!(lib.counts(), [0, 0, 0, 0, 0], "nothing refused reached a backend");
}

#[tokio::test]
async fn hostile_documents_are_refused_quickly_without_echo() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let deep = format!("{}{}", "{ a ".repeat(20_000), "}".repeat(20_000));
    let started = Instant::now();
    let (s, body) = gql(&lib.gw, Some(&t), &deep, json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(s == 400 || s == 200, "{s}");
    assert!(body.to_string().len() < 1000, "the document is not echoed");
    assert!(body.get("data").is_none());
    // Half a megabyte of document (under the 1 MiB body limit): refused before parsing.
    let long = format!("{{ {} }}", "__typename ".repeat(50_000));
    let started = Instant::now();
    let (s, body) = gql(&lib.gw, Some(&t), &long, json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(s, 400);
    assert!(body.to_string().len() < 1000);
    // A syntax error on a long line: located, in graphql-js's words, without the line (the
    // parser's message quoted it whole, with a caret under the spot).
    let broken = format!("{{ {} }} }}", "a: __typename ".repeat(3_000));
    let (s, body) = gql(&lib.gw, Some(&t), &broken, json!({})).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.to_string().len() < 1000,
        "the document is not echoed: {} bytes",
        body.to_string().len()
    );
    assert_eq!(
        body["errors"],
        json!([{"message": "Syntax Error: expected EOI or executable_definition.", "locations": [{"line": 1, "column": broken.len()}]}])
    );
    // Above the body limit: 413.
    let huge = "x".repeat(1 << 20);
    let (s, _) = gql(&lib.gw, Some(&t), &huge, json!({})).await;
    assert_eq!(s, 413);
}

#[tokio::test]
async fn fragments_spread_inside_themselves_or_over_and_over_are_refused_quickly() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    // Every one of these once took the whole process down with a stack overflow (Facade prepares
    // an operation before async-graphql validates it, and followed spreads round the cycle).
    let cycles = [
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "{ readerApp { ...N } } fragment N on ReaderAppQuery { shelf { count } ...N }",
        "{ readerApp { shelf { ...S } } } fragment S on ReaderAppShelf { count ... on ReaderAppShelf { ...S } }",
    ];
    for doc in cycles {
        let started = Instant::now();
        let (s, body) = gql(&lib.gw, Some(&t), doc, json!({})).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{doc}");
        assert_eq!(s, 200, "{doc}: {body}");
        assert!(body.get("data").is_none(), "{doc}: {body}");
        // In graphql-js's words, not as nesting too deep.
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Cannot spread fragment"), "{doc}: {body}");
    }
    let (_, body) = gql(&lib.gw, Some(&t), cycles[0], json!({})).await;
    assert_eq!(
        body["errors"],
        json!([{"message": "Cannot spread fragment \"A\" within itself via \"B\".", "locations": [{"line": 1, "column": 32}, {"line": 1, "column": 61}]}])
    );
    // Twenty-six fragments, each spreading the next twice: 2^26 fields in 1.5 KiB, which
    // async-graphql's complexity check spread one by one (11 s of CPU in a release build).
    let mut bomb = String::from("{ readerApp { ...F0 } }");
    for i in 0..26 {
        bomb.push_str(&format!(
            " fragment F{i} on ReaderAppQuery {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    bomb.push_str(" fragment F26 on ReaderAppQuery { shelf { count } }");
    let started = Instant::now();
    let (s, body) = gql(&lib.gw, Some(&t), &bomb, json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(s, 200, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("fragments are spread"), "{body}");
    assert!(body.to_string().len() < 1000, "the document is not echoed");
    assert_eq!(lib.counts(), [0, 0, 0, 0, 0], "nothing refused reached a backend");
    // The server is still there, and answers an ordinary operation.
    let (s, body) = gql(&lib.gw, Some(&t), "{ readerApp { shelf { count } } }", json!({})).await;
    assert_eq!(
        (s, &body["data"]["readerApp"]["shelf"]["count"]),
        (200, &json!(2)),
        "{body}"
    );
}

#[tokio::test]
async fn only_documents_that_ran_are_kept_each_weighed_with_its_overhead() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let documents = || {
        let plan = lib.gw.state.plan();
        let docs = plan.graphql_schema.as_ref().expect("a schema").documents.clone();
        docs.run_pending_tasks();
        docs
    };
    // A document that fails validation fails again: it is not kept.
    let (_, body) = gql(&lib.gw, Some(&t), "{ nope }", json!({})).await;
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(documents().entry_count(), 0);
    // One that ran is, weighed at more than its text (a parsed document and its entry take
    // kilobytes: weighed by its 14 bytes alone, 90,000 small documents held 80 MiB).
    let (_, body) = gql(&lib.gw, Some(&t), "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let docs = documents();
    assert_eq!(docs.entry_count(), 1);
    assert!(docs.weighted_size() >= 2048, "{}", docs.weighted_size());
}

#[tokio::test]
async fn names_and_nullability_follow_the_spec() {
    let comp = r#"
client: ios-app
base_path: /ios
endpoints:
  home_screen:
    get: /home
    calls:
      u: { service: data, get: /u }
      o: { service: data, get: /o, optional: true }
    response:
      hello: "Hi {$.u.name}"
      fixed: 3
      joined: 'join($.u.tags, ", ")'
      joinedNothing: "join($.o.x)"
      count: "length($.u.tags)"
      maybe: "$.o.x"
      nested:
        inner: "$.u.name"
      items:
        each: "$.u.tags[*]"
        fields: { tag: "@" }
      all: "$.u.tags[*]"
"#;
    let data = Backend::fixed(json!({"name": "n", "tags": ["a"]})).await;
    let p = Project::new(&facade_yaml(&[("data", data.url())], ""), &[("ios.yaml", comp)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    let q = r#"{
      __schema { queryType { fields { name type { kind name ofType { name } } } } }
      t: __type(name: "IosAppHomeScreen") { fields { name type { kind name ofType { kind name ofType { kind name ofType { name } } } } } }
      n: __type(name: "IosAppHomeScreenNested") { name }
      i: __type(name: "IosAppHomeScreenItems") { name }
    }"#;
    let (_, body) = gql(&gw, Some(&t), q, json!({})).await;
    let root = &body["data"]["__schema"]["queryType"]["fields"][0];
    assert_eq!(root["name"], "iosApp");
    assert_eq!(root["type"]["kind"], "NON_NULL");
    assert_eq!(root["type"]["ofType"]["name"], "IosAppQuery");
    assert_eq!(body["data"]["n"]["name"], "IosAppHomeScreenNested");
    assert_eq!(body["data"]["i"]["name"], "IosAppHomeScreenItems");
    let fields: Vec<(String, String)> = body["data"]["t"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), type_text(&f["type"])))
        .collect();
    let expect = [
        ("hello", "String!"),
        ("fixed", "Int!"),
        ("joined", "String!"),
        ("joinedNothing", "String!"),
        ("count", "Int"),
        ("maybe", "JSON"),
        ("nested", "IosAppHomeScreenNested!"),
        ("items", "[IosAppHomeScreenItems!]!"),
        ("all", "[JSON]!"),
    ];
    let expect: Vec<(String, String)> = expect.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(fields, expect);
    // The endpoint field is nullable and lowerCamelCase.
    let (_, body) = gql(
        &gw,
        Some(&t),
        "{ iosApp { homeScreen { hello joined joinedNothing count } } }",
        json!({}),
    )
    .await;
    // `join` of null is "", as its `String!` says (it was null, and nulled the endpoint field).
    assert_eq!(
        body["data"]["iosApp"]["homeScreen"],
        json!({"hello": "Hi n", "joined": "a", "joinedNothing": "", "count": 1}),
        "{body}"
    );
}

#[tokio::test]
async fn a_fallback_is_typed_with_the_answer_it_stands_in_for() {
    // The document requires `id` and `name`; the fallback gives `name` alone. Typed from the
    // document only, `id: String!` would make every fallback a null-in-non-null field error.
    let people = r#"
openapi: 3.0.3
info: { title: people, version: "1" }
paths:
  /authors/{id}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [id, name, books]
                properties:
                  id: { type: string }
                  name: { type: string }
                  books: { type: array, items: { type: object, required: [t], properties: { t: { type: string } } } }
"#;
    let comp = |fallback: &str| {
        format!(
            r#"
client: app
base_path: /app
endpoints:
  page:
    get: /page/{{id}}
    calls:
      author: {{ service: people, get: "/authors/{{$.args.id}}", optional: true, fallback: {fallback} }}
    response:
      author: "$.author"
      books:
        each: "$.author.books[*]"
        fields: {{ t: "@.t" }}
"#
        )
    };
    let backend = Backend::start(|s| {
        if s.uri.ends_with("/a1") {
            Reply::json(json!({"id": "a1", "name": "Frank", "books": [{"t": "Dune"}]}))
        } else {
            Reply::status(404, json!({}))
        }
    })
    .await;
    let yaml = facade_yaml(&[("people", backend.url())], "").replace(
        &format!("url: {}\n", backend.url()),
        &format!("url: {}\n    schema: people.yaml\n", backend.url()),
    );
    let p =
        Project::new(&yaml, &[("app.yaml", &comp(r#"{ name: unknown, books: [{}] }"#))]).schema("people.yaml", people);
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    let q = r#"query($id: ID!) { app { page(id: $id) { author { id name books { t } } books { t } } } }"#;
    let (_, body) = gql(&gw, Some(&t), q, json!({"id": "a1"})).await;
    assert_eq!(
        body,
        json!({"data": {"app": {"page": {"author": {"id": "a1", "name": "Frank", "books": [{"t": "Dune"}]}, "books": [{"t": "Dune"}]}}}})
    );
    let (_, body) = gql(&gw, Some(&t), q, json!({"id": "zz"})).await;
    assert_eq!(
        body["data"],
        json!({"app": {"page": {"author": {"id": null, "name": "unknown", "books": [{"t": null}]}, "books": [{"t": null}]}}}),
        "{body}"
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "only the failed call is an error: {body}");
    assert_eq!(errors[0]["extensions"]["call"], "author");
    // The same answer over REST.
    let (s, _, rest) = get(&gw.url("/app/page/zz"), Some(&t)).await;
    assert_eq!(s, 200);
    assert_eq!(rest["author"], json!({"name": "unknown", "books": [{}]}));

    // A fallback that contradicts the document is a load error at the fallback.
    let p = Project::new(&yaml, &[("app.yaml", &comp(r#"{ name: 5 }"#))]).schema("people.yaml", people);
    let out = p.diagnostics(&[]);
    assert!(
        out.contains("compositions/app.yaml:8:89: the fallback does not fit what people GET /authors/{id} answers: `name` is a number where the document has a string"),
        "{out}"
    );
    let p = Project::new(&yaml, &[("app.yaml", &comp(r#"{ books: [{ t: true }] }"#))]).schema("people.yaml", people);
    let out = p.diagnostics(&[]);
    assert!(
        out.contains("`books[0].t` is a boolean where the document has a string"),
        "{out}"
    );
}

#[tokio::test]
async fn a_single_value_given_for_a_list_argument_is_a_list_of_it() {
    // GraphQL's input coercion: `tags: "gift"` for `[String!]` is `["gift"]`, at every level.
    let comp = r#"
client: app
base_path: /app
endpoints:
  tag:
    post: /tag
    body: { tags: "[String!]", grid: "[[Int]]" }
    calls:
      t: { service: data, post: /t, body: { tags: "$.args.tags", grid: "$.args.grid" } }
    response: { ok: "$.t.ok" }
"#;
    let data = Backend::fixed(json!({"ok": true})).await;
    let p = Project::new(&facade_yaml(&[("data", data.url())], ""), &[("app.yaml", comp)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    let sent = |data: &Backend| -> Value { serde_json::from_slice(&data.seen().last().unwrap().body).unwrap() };
    let m = r#"mutation { app { tag(tags: "gift", grid: 1) { ok } } }"#;
    let (_, body) = gql(&gw, Some(&t), m, json!({})).await;
    assert_eq!(body, json!({"data": {"app": {"tag": {"ok": true}}}}));
    assert_eq!(sent(&data), json!({"tags": ["gift"], "grid": [[1]]}));
    // The same through variables, twice (the second run is Facade's own executor's).
    let m = r#"mutation($t: [String!], $g: [[Int]]) { app { tag(tags: $t, grid: $g) { ok } } }"#;
    for _ in 0..2 {
        let (_, body) = gql(&gw, Some(&t), m, json!({"t": "wrap", "g": [[2], [3]]})).await;
        assert_eq!(body, json!({"data": {"app": {"tag": {"ok": true}}}}));
        assert_eq!(sent(&data), json!({"tags": ["wrap"], "grid": [[2], [3]]}));
    }
}

/// `String!`, `[T!]!` from an introspected type.
fn type_text(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_text(&t["ofType"])),
        Some("LIST") => format!("[{}]", type_text(&t["ofType"])),
        _ => t["name"].as_str().unwrap_or("?").to_string(),
    }
}

#[tokio::test]
async fn a_schema_without_queries_has_the_empty_field() {
    let comp = r#"
client: app
base_path: /app
endpoints:
  write:
    post: /write
    calls: { w: { service: data, post: /w } }
    response: { ok: "$.w.ok" }
"#;
    let p = Project::new(
        &facade_yaml(&[("data", "http://127.0.0.1:9".into())], ""),
        &[("app.yaml", comp)],
    );
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    let (_, body) = gql(&gw, Some(&t), "{ _empty }", json!({})).await;
    assert_eq!(body, json!({"data": {"_empty": null}}));
    let (_, body) = gql(
        &gw,
        Some(&t),
        "{ __type(name: \"Query\") { fields { name } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["__type"]["fields"], json!([{"name": "_empty"}]));
}

#[test]
fn invalid_and_colliding_names_are_load_errors() {
    let comp = r#"
client: shop
base_path: /shop
endpoints:
  cart_items:
    get: /a
    calls: { a: { service: data, get: /a } }
    response: { total: "$.a.t" }
  cartItems:
    get: /b
    calls: { a: { service: data, get: /a } }
    response:
      unread-count: "$.a.n"
"#;
    let p = Project::new(
        &facade_yaml(&[("data", "http://127.0.0.1:9".into())], ""),
        &[("shop.yaml", comp)],
    );
    let out = p.diagnostics(&[]);
    assert!(
        out.contains("compositions/shop.yaml:9:3: endpoint `cartItems` gives the GraphQL field `cartItems`, as the endpoint at line 5 does"),
        "{out}"
    );
    let comp = r#"
client: shop
base_path: /shop
endpoints:
  home:
    get: /a
    calls: { a: { service: data, get: /a } }
    response:
      unread-count: "$.a.n"
      deals: { x: "$.a.x" }
  home_deals:
    get: /b
    calls: { a: { service: data, get: /a } }
    response: { y: "$.a.y" }
"#;
    let p = Project::new(
        &facade_yaml(&[("data", "http://127.0.0.1:9".into())], ""),
        &[("shop.yaml", comp)],
    );
    let out = p.diagnostics(&[]);
    assert!(
        out.contains("compositions/shop.yaml:9:7: response field `unread-count` is not a valid GraphQL name"),
        "{out}"
    );
    assert!(
        out.contains("would be the GraphQL type `ShopHomeDeals`, which"),
        "{out}"
    );
}

#[tokio::test]
async fn a_trailing_slash_on_graphql_path_is_the_same_path() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let comp = "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    auth: none\n    calls: { s: { service: data, get: /s } }\n    response: { v: \"$.s.v\" }\n";
    let p = Project::new(
        &facade_yaml(&[("data", data.url())], "graphql:\n  path: /api/gql/\n  auth: none\n"),
        &[("app.yaml", comp)],
    );
    let gw = Gateway::start(p.plan(&[])).await;
    let resp = client()
        .post(gw.url("/api/gql"))
        .json(&json!({"query": "{ app { e { v } } }"}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"data": {"app": {"e": {"v": 1}}}}));
}

/// POSTs an operation as text and returns the status, the content type and the body unparsed.
async fn gql_raw(gw: &Gateway, token: Option<&str>, accept: &str, query: &str) -> (u16, String, String) {
    gql_text(gw, token, accept, json!({"query": query})).await
}

/// POSTs an operation with variables; returns the status, the content type and the body text.
async fn gql_vars(gw: &Gateway, token: &str, accept: &str, query: &str, variables: Value) -> (u16, String, String) {
    gql_text(gw, Some(token), accept, json!({"query": query, "variables": variables})).await
}

async fn gql_text(gw: &Gateway, token: Option<&str>, accept: &str, body: Value) -> (u16, String, String) {
    let mut req = client()
        .post(gw.url("/graphql"))
        .header("accept", accept)
        .header("x-reader-language", "fr")
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// Whether the plan remembers `text` as validated, and prepared for Facade's own executor.
fn prepared(gw: &Gateway, text: &str) -> Option<bool> {
    let plan = gw.state.plan();
    let schema = plan.graphql_schema.as_ref()?;
    schema.validated.get(&(Arc::from(text), None)).map(|p| p.is_some())
}

/// Runs each operation twice: first through async-graphql (it validates the document), then
/// through Facade's own executor; both answers must be the same, byte for byte.
async fn same_answer_from_both_executors(gw: &Gateway, token: Option<&str>, operations: &[&str]) {
    for accept in ["application/json", "application/graphql-response+json"] {
        for q in operations {
            let first = gql_raw(gw, token, accept, q).await;
            assert_eq!(first.0, 200, "{q}: {}", first.2);
            assert_eq!(prepared(gw, q), Some(true), "prepared after its first run: {q}");
            let second = gql_raw(gw, token, accept, q).await;
            assert_eq!(second, first, "{q} ({accept})");
        }
    }
}

#[tokio::test]
async fn a_validated_operation_runs_again_through_facades_executor_with_the_same_answer() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    same_answer_from_both_executors(
        &lib.gw,
        Some(&t),
        &[
            r#"{ readerApp { bookPage(id: "b1") { title authorName stars editions { isbn onShelf } } } }"#,
            r#"{ __typename r: readerApp { __typename a: bookPage(id: "b1") { __typename t: title
                 editions { __typename isbn } } b: bookPage(id: "b2", lang: "fr") { title } shelf { count owner } } }"#,
            r#"query Page { readerApp { bookPage(id: "b1") { ...Basics
                 ... on ReaderAppBookPage { stars @include(if: false) authorName @include(if: true) }
                 title @skip(if: true) } } }
               fragment Basics on ReaderAppBookPage { editions { isbn } }"#,
            r#"{ readerApp { gone: bookPage(id: "missing") { title } page: bookPage(id: "b1") { title } } }"#,
            r#"{ readerApp { authorCard(id: "a1") { name } bookPage(id: "b1") { authorName } } }"#,
            r#"mutation { readerApp { ok: borrow(isbn: "i1") { dueDate } no: borrow(isbn: "taken") { dueDate } } }"#,
        ],
    )
    .await;
    // Anonymous: a field that needs a token is refused on both.
    let open = library("graphql:\n  auth: optional\n").await;
    same_answer_from_both_executors(
        &open.gw,
        None,
        &[r#"{ readerApp { shelf { count } bookPage(id: "b1") { title } } }"#],
    )
    .await;

    // What Facade's executor does not run is remembered as valid but not prepared, and keeps
    // running through async-graphql: a response key selected twice (merged), introspection.
    for q in [
        r#"{ readerApp { bookPage(id: "b1") { title } bookPage(id: "b1") { authorName } } }"#,
        "{ __schema { queryType { name } } }",
    ] {
        let first = gql_raw(&lib.gw, Some(&t), "application/json", q).await;
        assert_eq!(prepared(&lib.gw, q), Some(false), "{q}");
        assert_eq!(gql_raw(&lib.gw, Some(&t), "application/json", q).await, first);
    }

    // A mutation over GET is refused before anything runs, on the prepared path too.
    let m = r#"mutation { readerApp { borrow(isbn: "i1") { dueDate } } }"#;
    gql_raw(&lib.gw, Some(&t), "application/json", m).await;
    assert_eq!(prepared(&lib.gw, m), Some(true));
    let loans = lib.loans.count();
    let url = format!(
        "{}?{}",
        lib.gw.url("/graphql"),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("query", m)
            .finish()
    );
    let resp = client().get(url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(lib.loans.count(), loans);
}

#[tokio::test]
async fn values_that_do_not_fit_give_the_same_errors_from_both_executors() {
    let comp = r#"
client: app
base_path: /app
endpoints:
  book:
    get: /books/{id}
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response:
      title: "$.b.title"
      pages: "$.b.pages"
      tags: "$.b.tags"
      parts: "$.b.parts"
      summary: { first: "$.b.parts[0].label", count: "length($.b.parts)" }
      partList: { each: "$.b.parts[*]", fields: { n: "@.n", label: "@.label", title: "{$.b.title}: {@.label}" } }
  partsOf:
    get: /parts/{id}
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response: { each: "$.b.parts", fields: { n: "@.n", label: "@.label" } }
  titleOf:
    get: /titles/{id}
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response: "$.b.title"
"#;
    let books = Backend::start(|s| {
        let id = s.uri.rsplit('/').next().unwrap_or_default().to_string();
        Reply::json(match id.as_str() {
            "pages" => json!({"title": "X", "pages": "many", "tags": ["a"]}),
            "tags" => json!({"title": "X", "pages": 1, "tags": ["a", 2, "c"], "parts": [{"n": 1, "label": 5}]}),
            "parts" => json!({"title": "X", "pages": 1, "parts": [{"n": 1}, null, {"n": "two"}]}),
            "nested" => json!({"title": "X", "pages": 1, "parts": [{"n": 1, "label": "one"}, {"label": "no n"}]}),
            "big" => json!({"title": "X", "pages": 3_000_000_000u64, "parts": [{"n": -2_147_483_649i64}]}),
            _ => json!({"title": "X", "pages": 300, "tags": ["a", "b"], "parts": [{"n": 1, "label": "é \"q\" \u{1}"}]}),
        })
    })
    .await;
    let gw = books_gateway(&books, comp).await;
    let t = token("u1", json!({}));
    let ops: Vec<String> = ["ok", "pages", "tags", "parts", "nested", "big"]
        .iter()
        .map(|id| {
            format!(
                r#"{{ app {{ b: book(id: "{id}") {{ title pages tags parts {{ n label }} summary {{ first count }}
                     partList {{ n label title }} }}
                     again: book(id: "{id}") {{ title tags partList {{ __typename label }} }}
                     p: partsOf(id: "{id}") {{ n label }} t: titleOf(id: "{id}") }} }}"#
            )
        })
        .collect();
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    same_answer_from_both_executors(&gw, Some(&t), &ops).await;
    // Every field of an object skipped: the object is `{}` (GraphQL's `CollectFields` gives an
    // empty map), an endpoint field, a nested object and a list's items alike.
    let skipped = r#"{ app { b: book(id: "ok") { title @skip(if: true) summary { first @include(if: false) }
                       partList { ... @skip(if: true) { label } } } c: book(id: "ok") { pages @skip(if: true) } } }"#;
    same_answer_from_both_executors(&gw, Some(&t), &[skipped]).await;
    let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", skipped).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"data": {"app": {"b": {"summary": {}, "partList": [{}]}, "c": {}}}}),
        "{body}"
    );
    // A namespace, and the whole answer, with nothing selected in them.
    for (q, expected) in [
        (
            r#"{ app { b: book(id: "ok") @skip(if: true) { title } } }"#,
            json!({"data": {"app": {}}}),
        ),
        (
            r#"{ app @include(if: false) { b: book(id: "ok") { title } } }"#,
            json!({"data": {}}),
        ),
    ] {
        for _ in 0..2 {
            let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", q).await;
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body, expected, "{q}");
        }
    }
    // An endpoint whose whole response is an `each` or one expression makes the calls that its
    // top reads, whatever fields are selected below it.
    let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", ops[0]).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["data"]["app"]["p"],
        json!([{"n": 1, "label": "é \"q\" \u{1}"}]),
        "{body}"
    );
    assert_eq!(body["data"]["app"]["t"], "X", "{body}");
    // And the answers are what value completion says (so both executors are not wrong alike).
    let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", ops[2]).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    // An OpenAPI array's items are non-null: an integer among strings fails the (nullable) list.
    assert_eq!(body["data"]["app"]["b"]["tags"], Value::Null, "{body:#}");
    assert_eq!(
        body["data"]["app"]["b"]["parts"],
        json!([{"n": 1, "label": null}]),
        "{body}"
    );
    let paths: Vec<&Value> = body["errors"].as_array().unwrap().iter().map(|e| &e["path"]).collect();
    assert!(paths.contains(&&json!(["app", "b", "tags", 1])), "{body}");
    assert!(paths.contains(&&json!(["app", "b", "parts", 0, "label"])), "{body}");
    let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", ops[1]).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["data"]["app"]["b"],
        Value::Null,
        "pages: Int! got a string: {body}"
    );
    assert_eq!(body["data"]["app"]["again"]["title"], "X");
    // GraphQL's Int is 32 bits: a larger integer is an error that says so.
    let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", ops[5]).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    let messages: Vec<(&Value, &Value)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["path"], &e["message"]))
        .collect();
    let range = json!("the value is an integer outside Int's 32-bit range, which does not fit the field's type Int");
    assert!(messages.contains(&(&json!(["app", "b", "pages"]), &range)), "{body}");
    assert!(messages.contains(&(&json!(["app", "p", 0, "n"]), &range)), "{body}");
    // An error at a value is located at the field that holds it, as GraphQL locates it (it was
    // the endpoint field's location), through fragments too; both executors alike.
    let located = r#"{ app { b: book(id: "tags") {
        tags
        ... on AppBook { parts { ...P } } } } }
      fragment P on AppBookParts { n label }"#;
    same_answer_from_both_executors(&gw, Some(&t), &[located]).await;
    let (_, _, body) = gql_raw(&gw, Some(&t), "application/json", located).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    let at: Vec<(&Value, &Value)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["path"], &e["locations"]))
        .collect();
    assert!(
        at.contains(&(&json!(["app", "b", "tags", 1]), &json!([{"line": 2, "column": 9}]))),
        "{body}"
    );
    assert!(
        at.contains(&(
            &json!(["app", "b", "parts", 0, "label"]),
            &json!([{"line": 4, "column": 38}])
        )),
        "{body}"
    );
}

#[tokio::test]
async fn operations_with_variables_run_through_facades_executor_when_their_values_are_plain() {
    let lib = library("").await;
    let t = token("u1", json!({}));
    let json_ = "application/json";
    let q = r#"query Page($id: ID!, $lang: String) {
        readerApp { bookPage(id: $id, lang: $lang) { title editions { isbn onShelf } } } }"#;
    let m = r#"mutation Borrow($isbn: ID!) { readerApp { borrow(isbn: $isbn) { dueDate } } }"#;
    let d = r#"query($id: ID! = "b1") { readerApp { bookPage(id: $id) { title } } }"#;
    // The first run of each text goes through async-graphql and prepares it.
    for (text, vars) in [(q, json!({"id": "b1"})), (m, json!({"isbn": "i1"})), (d, json!({}))] {
        let first = gql_vars(&lib.gw, &t, json_, text, vars).await;
        assert_eq!(first.0, 200, "{}", first.2);
        assert_eq!(prepared(&lib.gw, text), Some(true), "{text}");
    }
    // Each later run, with any plain values, answers as async-graphql answers the same values
    // for a text it has never seen (the same operation with a trailing space).
    let cases = [
        (q, json!({"id": "b1"})),
        (q, json!({"id": "b2", "lang": "fr"})),
        (q, json!({"id": "b1", "lang": null})),
        (q, json!({"id": "missing"})),
        (m, json!({"isbn": "taken"})),
        (d, json!({})),
        (d, json!({"id": "missing"})),
        // Not plain (a number for an ID, an unknown variable): async-graphql takes them.
        (q, json!({"id": 7})),
        (q, json!({"id": "b1", "other": 1})),
    ];
    for (i, (text, vars)) in cases.iter().enumerate() {
        for accept in [json_, "application/graphql-response+json"] {
            let ours = gql_vars(&lib.gw, &t, accept, text, vars.clone()).await;
            let fresh = format!("{text}{}", " ".repeat(i + 1));
            let theirs = gql_vars(&lib.gw, &t, accept, &fresh, vars.clone()).await;
            assert_eq!(ours, theirs, "{text} with {vars} ({accept})");
        }
    }
    // A required variable not given is a request error (async-graphql alone would run the
    // operation and fail its fields), on either path.
    for text in [q, "query($id: ID!) { readerApp { bookPage(id: $id) { title } } }"] {
        let (s, _, body) = gql_vars(
            &lib.gw,
            &t,
            "application/graphql-response+json",
            text,
            json!({"lang": "fr"}),
        )
        .await;
        assert_eq!(s, 400, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body.get("data").is_none(), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("$id"), "{body}");
        let (s, _, _) = gql_vars(&lib.gw, &t, json_, text, json!({"id": null})).await;
        assert_eq!(s, 200);
    }
    // A wrongly typed value is refused after good runs of the same text.
    let (s, _, body) = gql_vars(
        &lib.gw,
        &t,
        "application/graphql-response+json",
        q,
        json!({"id": {"no": 1}}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
}

/// Every selectable field of an output type, as a GraphQL selection set (empty for a leaf).
fn full_selection(ty: &facade::plan::output::OutType) -> String {
    use facade::plan::output::Kind;
    match &ty.kind {
        Kind::Leaf(_) => String::new(),
        Kind::List(inner) => full_selection(inner),
        Kind::Object(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name, full_selection(&f.ty)))
                .collect();
            format!("{{ {} }}", inner.join(" "))
        }
    }
}

/// Runs `q` twice, the first time through async-graphql and the second through Facade's own
/// executor, and checks that each answers `data.<client>.<field>` = `expected`, without errors.
async fn answers_like_rest(gw: &Gateway, t: &str, q: &str, client: &str, field: &str, expected: &Value) {
    for run in ["async-graphql", "facade"] {
        let (status, body) = gql(gw, Some(t), q, json!({})).await;
        assert_eq!(status, 200, "{q} ({run}): {body}");
        assert!(body.get("errors").is_none(), "{q} ({run}): {body}");
        assert_eq!(&body["data"][client][field], expected, "{q} ({run})");
    }
}

/// The selection of one leaf by its path (`["a", "b"]` → `a { b }`).
fn selection_of(path: &[String]) -> String {
    path.iter().rev().fold(String::new(), |inner, name| {
        if inner.is_empty() {
            name.clone()
        } else {
            format!("{name} {{ {inner} }}")
        }
    })
}

/// The path of every leaf field of an output type, by field names.
fn leaf_paths(ty: &facade::plan::output::OutType, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(fields) = ty.innermost().fields() else {
        out.push(at.clone());
        return;
    };
    for f in fields {
        at.push(f.name.clone());
        leaf_paths(&f.ty, at, out);
        at.pop();
    }
}

/// The part of a REST answer that selecting only `path` keeps (lists keep their length).
fn project(v: &Value, path: &[String]) -> Value {
    match (v, path.split_first()) {
        (Value::Array(items), Some(_)) => Value::Array(items.iter().map(|i| project(i, path)).collect()),
        (Value::Object(m), Some((name, rest))) => {
            json!({ name.as_str(): project(m.get(name).unwrap_or(&Value::Null), rest) })
        }
        _ => v.clone(),
    }
}

#[tokio::test]
async fn every_endpoint_shape_answers_over_graphql_what_it_answers_over_rest() {
    // Every shape a response can take, at the top and below it: the GraphQL answer selecting
    // every field must be the REST body, from either executor (a selection prunes calls; it
    // must never change a value).
    let comp = r#"
client: shapes
base_path: /shapes
endpoints:
  whole:
    get: /whole/{id}
    auth: optional
    calls:
      b: { service: books, get: "/books/{$.args.id}" }
      c: { service: books, get: "/extra/{$.b.ref}" }
      st: { each: "$.b.parts[*]", attach: st, service: books, get: "/stock/{@.n}", optional: true }
    response:
      title: "$.b.title"
      tpl: "{$.b.title} #{$.args.id}"
      n: "length($.b.parts)"
      first: "first($.b.parts[*].label)"
      co: "coalesce($.b.missing, $.c.note)"
      j: "join($.b.tags, '|')"
      total: "sum($.b.parts[*].n)"
      big: "$.b.parts[?@.n > 1].label"
      nested: { a: "$.c.note", deeper: { t: "$.b.title" } }
      parts: { each: "$.b.parts[*]", fields: { n: "@.n", level: "@.st.level", me: "@" } }
      lit: 5
      arr: ["$.b.title", 1]
  list_root:
    get: /list/{id}
    auth: optional
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response: { each: "$.b.parts", fields: { label: "@.label" } }
  path_root:
    get: /title/{id}
    auth: optional
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response: "$.b.title"
  array_root:
    get: /arr/{id}
    auth: optional
    calls:
      b: { service: books, get: "/books/{$.args.id}" }
      c: { service: books, get: "/extra/{$.b.ref}" }
    response: ["$.b.title", "$.c.note"]
  func_root:
    get: /count/{id}
    auth: optional
    calls: { b: { service: books, get: "/books/{$.args.id}" } }
    response: "length($.b.parts)"
  partial:
    get: /partial/{id}
    auth: optional
    calls:
      b: { service: books, get: "/books/{$.args.id}" }
      o: { service: books, get: "/fail/{$.b.ref}", optional: true }
      w: { service: books, get: "/extra/w", when: "$.b.missing" }
      f: { service: books, get: "/fail/f", optional: true, fallback: { note: "fallback" } }
    response:
      title: "$.b.title"
      fromO: "$.o.note"
      fromW: "$.w.note"
      fromF: "$.f.note"
      list: { each: "$.o.items[*]", fields: { x: "@.x" } }
  post_list:
    post: /lists
    auth: optional
    body: { id: ID! }
    calls: { b: { service: books, post: "/books/{$.args.id}" } }
    response: { each: "$.b.parts[*]", fields: { label: "@.label", again: "{@.label}!" } }
"#;
    let books = Backend::start(|s| {
        let u = s.uri.as_str();
        if u.starts_with("/fail/") {
            return Reply::status(500, json!({"error": "down"}));
        }
        Reply::json(if u.starts_with("/books/") {
            json!({"title": "Dune", "ref": "r9", "tags": ["sf", "classic"],
                   "parts": [{"n": 1, "label": "one"}, {"n": 2, "label": "two"}, {"n": 3, "label": "three"}]})
        } else if u.starts_with("/extra/") {
            json!({"note": "from extra"})
        } else {
            json!({"level": u.len()})
        })
    })
    .await;
    // No OpenAPI document: every leaf is `JSON`, so nothing is refused by its type.
    let yaml = format!("services:\n  books:\n    url: {}\n{AUTH}", books.url());
    let gw = Gateway::start(Project::new(&yaml, &[("shapes.yaml", comp)]).plan(&[])).await;
    let t = token("u1", json!({}));
    let plan = gw.state.plan();
    let fields = [
        ("whole", "whole", "/shapes/whole/b1"),
        ("list_root", "listRoot", "/shapes/list/b1"),
        ("path_root", "pathRoot", "/shapes/title/b1"),
        ("array_root", "arrayRoot", "/shapes/arr/b1"),
        ("func_root", "funcRoot", "/shapes/count/b1"),
    ];
    for (name, field, path) in fields {
        let endpoint = plan.endpoints.iter().find(|e| e.name == name).unwrap();
        let (status, _, rest) = get(&gw.url(path), Some(&t)).await;
        assert_eq!(status, 200, "{name}: {rest}");
        let q = format!(
            r#"{{ shapes {{ {field}(id: "b1") {} }} }}"#,
            full_selection(&endpoint.output)
        );
        answers_like_rest(&gw, &t, &q, "shapes", field, &rest).await;
    }
    // All of them in one operation: their identical `/books/b1` calls run once and are shared,
    // and each endpoint still reads everything it reads alone.
    let mut all = String::new();
    let mut expected = serde_json::Map::new();
    for (name, field, path) in fields {
        let endpoint = plan.endpoints.iter().find(|e| e.name == name).unwrap();
        all.push_str(&format!(r#" {field}(id: "b1") {}"#, full_selection(&endpoint.output)));
        expected.insert(field.to_string(), get(&gw.url(path), Some(&t)).await.2);
    }
    let before = books.count();
    for run in ["async-graphql", "facade"] {
        let (status, body) = gql(&gw, Some(&t), &format!("{{ shapes {{{all} }} }}"), json!({})).await;
        assert_eq!(status, 200, "{run}: {body}");
        assert_eq!(body["data"]["shapes"], Value::Object(expected.clone()), "{run}: {body}");
    }
    // Per run: one /books/b1, one /extra/r9 and three /stock calls.
    assert_eq!(
        books.count() - before,
        2 * 5,
        "identical calls are shared across the operation"
    );
    // Each field of `whole` selected alone, then every leaf alone however deep (`parts { level }`
    // needs the attached `st` call): the calls a selection prunes never change a value.
    let whole = plan.endpoints.iter().find(|e| e.name == "whole").unwrap();
    let (_, _, rest) = get(&gw.url("/shapes/whole/b1"), Some(&t)).await;
    for f in whole.output.fields().unwrap() {
        let q = format!(
            r#"{{ shapes {{ whole(id: "b1") {{ {} {} }} }} }}"#,
            f.name,
            full_selection(&f.ty)
        );
        let expected = json!({ f.name.as_str(): rest[&f.name] });
        answers_like_rest(&gw, &t, &q, "shapes", "whole", &expected).await;
    }
    let mut leaves = Vec::new();
    leaf_paths(&whole.output, &mut Vec::new(), &mut leaves);
    assert!(leaves.len() > 12, "{leaves:?}");
    for path in leaves {
        let q = format!(r#"{{ shapes {{ whole(id: "b1") {{ {} }} }} }}"#, selection_of(&path));
        answers_like_rest(&gw, &t, &q, "shapes", "whole", &project(&rest, &path)).await;
    }
    // Failed optional calls, a fallback and a `when` that is false: the same data as REST, and
    // one error per failed call where REST names them in `X-Facade-Partial`.
    let partial = plan.endpoints.iter().find(|e| e.name == "partial").unwrap();
    let (status, headers, rest) = get(&gw.url("/shapes/partial/b1"), Some(&t)).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(headers["x-facade-partial"], "o, f");
    assert_eq!(
        rest,
        json!({"title": "Dune", "fromO": null, "fromW": null, "fromF": "fallback", "list": []})
    );
    let q = format!(
        r#"{{ shapes {{ partial(id: "b1") {} }} }}"#,
        full_selection(&partial.output)
    );
    for run in ["async-graphql", "facade"] {
        let (status, body) = gql(&gw, Some(&t), &q, json!({})).await;
        assert_eq!(status, 200, "{run}: {body}");
        assert_eq!(body["data"]["shapes"]["partial"], rest, "{run}: {body}");
        let calls: Vec<&Value> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["extensions"]["call"])
            .collect();
        assert_eq!(calls, [&json!("o"), &json!("f")], "{run}: {body}");
    }
    // A mutation the same way.
    let endpoint = plan.endpoints.iter().find(|e| e.name == "post_list").unwrap();
    let rest: Value = client()
        .post(gw.url("/shapes/lists"))
        .bearer_auth(&t)
        .json(&json!({"id": "b1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = format!(
        r#"mutation {{ shapes {{ postList(id: "b1") {} }} }}"#,
        full_selection(&endpoint.output)
    );
    answers_like_rest(&gw, &t, &m, "shapes", "postList", &rest).await;
    assert_eq!(rest.as_array().map(Vec::len), Some(3), "{rest}");
}

#[tokio::test]
async fn the_shipped_endpoints_answer_over_graphql_what_they_answer_over_rest() {
    // The shipped configuration with its demo backends: typed by the shipped OpenAPI documents.
    let (gw, t) = shipped_gateway().await;
    let plan = gw.state.plan();
    let cases = [
        ("mobile", "home", "home", "", "/mobile/api/home"),
        (
            "mobile",
            "order",
            "order",
            r#"(id: "ord-77812")"#,
            "/mobile/api/orders/ord-77812",
        ),
        (
            "web",
            "product",
            "product",
            r#"(id: "p-01001", reviews: 2)"#,
            "/web/api/products/p-01001?reviews=2",
        ),
    ];
    for (client, name, field, args, path) in cases {
        let endpoint = plan
            .endpoints
            .iter()
            .find(|e| e.client == client && e.name == name)
            .unwrap();
        let (status, _, rest) = get(&gw.url(path), Some(&t)).await;
        assert_eq!(status, 200, "{name}: {rest}");
        let q = format!(
            "{{ {client} {{ {field}{args} {} }} }}",
            full_selection(&endpoint.output)
        );
        answers_like_rest(&gw, &t, &q, client, field, &rest).await;
        // Every leaf alone: the calls a selection prunes never change a value.
        let mut leaves = Vec::new();
        leaf_paths(&endpoint.output, &mut Vec::new(), &mut leaves);
        for path in leaves {
            let q = format!("{{ {client} {{ {field}{args} {{ {} }} }} }}", selection_of(&path));
            answers_like_rest(&gw, &t, &q, client, field, &project(&rest, &path)).await;
        }
    }
}

#[tokio::test]
async fn an_int_beyond_32_bits_fails_the_request_not_the_field() {
    let comp = r#"
client: shelf
base_path: /shelf
endpoints:
  search:
    get: /search
    auth: none
    query:
      limit: { type: Int, default: 5 }
      years: "[Int]"
    calls: { s: { service: books, get: /search, query: { limit: "$.args.limit", year: "$.args.years" } } }
    response: { echo: "$.s" }
  reserve:
    post: /reserve
    auth: none
    body: { copies: Int! }
    calls: { r: { service: books, post: /reserve, body: { n: "$.args.copies" } } }
    response: { echo: "$.r" }
"#;
    let books = Backend::start(|s| Reply::json(json!({"uri": s.uri}))).await;
    let yaml = format!("services:\n  books:\n    url: {}\n", books.url());
    let p = Project::new(&yaml, &[("shelf.yaml", comp)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let refused = |body: &Value, what: &str| {
        assert!(
            body.get("data").is_none(),
            "{what}: no data for a request error: {body}"
        );
        let m = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            m.contains("Int is a whole number from -2147483648 to 2147483647"),
            "{what}: {body}"
        );
    };
    for (what, query, variables) in [
        ("literal", "{ shelf { search(limit: 2147483648) { echo } } }", json!({})),
        (
            "negative literal",
            "{ shelf { search(limit: -2147483649) { echo } } }",
            json!({}),
        ),
        (
            "list item",
            "{ shelf { search(years: [2024, 9999999999]) { echo } } }",
            json!({}),
        ),
        (
            "one item for a list",
            "{ shelf { search(years: 9999999999) { echo } } }",
            json!({}),
        ),
        (
            "in a fragment",
            "{ shelf { ...S } } fragment S on ShelfQuery { search(limit: 3000000000) { echo } }",
            json!({}),
        ),
        (
            "in inline fragments",
            "{ ... on Query { shelf { ... { search(limit: 3000000000) { echo } } } } }",
            json!({}),
        ),
        (
            "mutation literal",
            "mutation { shelf { reserve(copies: 3000000000) { echo } } }",
            json!({}),
        ),
        (
            "variable",
            "query($l: Int) { shelf { search(limit: $l) { echo } } }",
            json!({"l": 3000000000_i64}),
        ),
        (
            "variable list",
            "query($y: [Int]) { shelf { search(years: $y) { echo } } }",
            json!({"y": [1, -3000000000_i64]}),
        ),
        (
            "variable default",
            "query($l: Int = 2147483648) { shelf { search(limit: $l) { echo } } }",
            json!({}),
        ),
    ] {
        let (status, body) = gql(&gw, None, query, variables).await;
        assert_eq!(status, 200, "{what}: application/json answers 200: {body}");
        refused(&body, what);
    }
    assert_eq!(books.count(), 0, "no request ran");
    // The same operation with a value in range runs, also once its document was remembered.
    let q = "query($l: Int) { shelf { search(limit: $l) { echo } } }";
    for l in [2147483647_i64, -2147483648, 7] {
        let (status, body) = gql(&gw, None, q, json!({"l": l})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["shelf"]["search"]["echo"]["uri"]
            .as_str()
            .is_some_and(|u| u.contains(&format!("limit={l}"))));
    }
    let (_, body) = gql(&gw, None, q, json!({"l": 2147483648_i64})).await;
    refused(&body, "a remembered operation with a variable out of range");
    let (_, body) = gql(
        &gw,
        None,
        "{ shelf { search(years: [2147483647]) { echo } } }",
        json!({}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    // As application/graphql-response+json, a request error is a 400.
    let resp = client()
        .post(gw.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({"query": "{ shelf { search(limit: 2147483648) { echo } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
