//! Pagination: where the next page is, from the page just read.

use serde_json::Value;
use sluice_sdk::{Error, Result};

use crate::interp::{self, Context};
use crate::model::{DefaultPaginator, PaginationStrategy, Paginator, TokenOption};
use crate::request::{HttpResponse, Options};

/// A stream's pagination in progress.
#[derive(Debug, Clone)]
pub struct Pages {
    paginator: Option<DefaultPaginator>,
    /// The current token (page number, offset or cursor); `None` before the first page.
    token: Option<Value>,
}

impl Pages {
    /// Pagination from the first page.
    pub fn new(paginator: &Option<Paginator>, ctx: &Context) -> Result<Pages> {
        let paginator = match paginator {
            Some(Paginator::DefaultPaginator(p)) => Some(p.as_ref().clone()),
            _ => None,
        };
        let token = match paginator.as_ref().map(|p| &p.pagination_strategy) {
            Some(PaginationStrategy::PageIncrement {
                start_from_page,
                inject_on_first_request: true,
                ..
            }) => Some(Value::from(*start_from_page)),
            Some(PaginationStrategy::OffsetIncrement {
                inject_on_first_request: true,
                ..
            }) => Some(Value::from(0)),
            _ => None,
        };
        let _ = ctx;
        Ok(Pages { paginator, token })
    }

    /// The token of the page about to be requested, as templates see it.
    pub fn token_value(&self) -> Value {
        match &self.token {
            Some(t) => serde_json::json!({ "next_page_token": t }),
            None => Value::Null,
        }
    }

    /// Whether the page about to be requested is not the first.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The paginator's request options for the page about to be requested.
    pub fn options(&self, out: &mut Options, ctx: &Context) -> Result<()> {
        let Some(p) = &self.paginator else {
            return Ok(());
        };
        let ctx = ctx.with("parameters", &Value::Object(p.parameters.clone()));
        if let (Some(opt), Some(size)) = (&p.page_size_option, self.page_size(&ctx)?) {
            out.inject(opt, &Value::from(size), &ctx)?;
        }
        if let Some(token) = &self.token {
            match &p.page_token_option {
                Some(TokenOption::RequestOption(opt)) => out.inject(opt, token, &ctx)?,
                Some(TokenOption::RequestPath {}) => {
                    out.path = Some(interp::json_str(token));
                }
                None => {}
            }
        }
        Ok(())
    }

    fn page_size(&self, ctx: &Context) -> Result<Option<i64>> {
        let Some(p) = &self.paginator else {
            return Ok(None);
        };
        let size = match &p.pagination_strategy {
            PaginationStrategy::PageIncrement { page_size, .. }
            | PaginationStrategy::OffsetIncrement { page_size, .. }
            | PaginationStrategy::CursorPagination { page_size, .. } => page_size,
        };
        match size {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_i64()),
            Some(Value::String(t)) => match interp::eval(t, ctx)? {
                None => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_i64()),
                Some(other) => Err(Error::config(format!(
                    "`page_size` must be a number, but `{t}` renders `{other}`"
                ))),
            },
            Some(other) => Err(Error::config(format!(
                "`page_size` must be a number, not `{other}`"
            ))),
        }
    }

    /// Move to the page after the one just read; `false` when it was the last.
    pub fn advance(
        &mut self,
        resp: &HttpResponse,
        body: &Value,
        page_size: usize,
        last_record: Option<&Value>,
        ctx: &Context,
    ) -> Result<bool> {
        let Some(p) = self.paginator.clone() else {
            return Ok(false);
        };
        let ctx = ctx.with("parameters", &Value::Object(p.parameters.clone()));
        let size = self.page_size(&ctx)?;
        let short =
            |size: Option<i64>| page_size == 0 || size.is_some_and(|s| (page_size as i64) < s);
        let next = match &p.pagination_strategy {
            PaginationStrategy::PageIncrement {
                start_from_page, ..
            } => {
                if short(size) {
                    None
                } else {
                    let current = self
                        .token
                        .as_ref()
                        .and_then(Value::as_i64)
                        .unwrap_or(*start_from_page);
                    // The last page number there is ends the pages.
                    current.checked_add(1).map(Value::from)
                }
            }
            PaginationStrategy::OffsetIncrement { .. } => {
                if short(size) {
                    None
                } else {
                    let current = self.token.as_ref().and_then(Value::as_i64).unwrap_or(0);
                    Some(Value::from(current + page_size as i64))
                }
            }
            PaginationStrategy::CursorPagination {
                cursor_value,
                stop_condition,
                parameters,
                ..
            } => {
                let mut c = ctx.with("parameters", &Value::Object(parameters.clone()));
                c.set("response", body)
                    .set("headers", &resp.headers_value())
                    .set("last_record", last_record.unwrap_or(&Value::Null))
                    .set("last_page_size", &Value::from(page_size));
                let stop = match stop_condition {
                    Some(s) => interp::boolean(s, &c)?,
                    None => false,
                };
                if stop {
                    None
                } else {
                    match interp::eval(cursor_value, &c)? {
                        Some(v) if !crate::resolve::is_falsy(&v) => Some(v),
                        _ => None,
                    }
                }
            }
        };
        let more = next.is_some();
        self.token = next;
        Ok(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn pages(p: Value) -> Pages {
        let p: Option<Paginator> = Some(serde_json::from_value(p).unwrap());
        Pages::new(&p, &Context::new(&json!({}), &Map::new())).unwrap()
    }

    fn resp() -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![],
            body: vec![],
        }
    }

    fn params(p: &Pages) -> Vec<(String, String)> {
        let mut o = Options::default();
        p.options(&mut o, &Context::new(&json!({}), &Map::new()))
            .unwrap();
        o.params
    }

    #[test]
    fn page_numbers_stop_at_a_short_page() {
        let ctx = Context::new(&json!({}), &Map::new());
        let mut p = pages(json!({"type": "DefaultPaginator",
            "pagination_strategy": {"type": "PageIncrement", "page_size": 2, "start_from_page": 1},
            "page_token_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "page"},
            "page_size_option": {"inject_into": "request_parameter", "field_name": "per_page"}}));
        assert_eq!(params(&p), vec![("per_page".into(), "2".into())]);
        assert!(p.advance(&resp(), &json!({}), 2, None, &ctx).unwrap());
        assert_eq!(
            params(&p),
            vec![("per_page".into(), "2".into()), ("page".into(), "2".into())]
        );
        assert!(p.advance(&resp(), &json!({}), 2, None, &ctx).unwrap());
        assert_eq!(p.token_value(), json!({"next_page_token": 3}));
        assert!(!p.advance(&resp(), &json!({}), 1, None, &ctx).unwrap());
    }

    #[test]
    fn offsets_move_by_the_records_read() {
        let ctx = Context::new(&json!({}), &Map::new());
        let mut p = pages(json!({"type": "DefaultPaginator",
            "pagination_strategy": {"type": "OffsetIncrement", "page_size": "{{ 3 }}", "inject_on_first_request": true},
            "page_token_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "offset"}}));
        assert_eq!(params(&p), vec![("offset".into(), "0".into())]);
        assert!(p.advance(&resp(), &json!({}), 3, None, &ctx).unwrap());
        assert_eq!(params(&p), vec![("offset".into(), "3".into())]);
        assert!(!p.advance(&resp(), &json!({}), 0, None, &ctx).unwrap());
    }

    #[test]
    fn cursors_come_from_the_response_until_the_stop_condition() {
        let ctx = Context::new(&json!({}), &Map::new());
        let mut p = pages(json!({"type": "DefaultPaginator",
            "pagination_strategy": {"type": "CursorPagination", "cursor_value": "{{ response.meta.next }}",
                "stop_condition": "{{ not response.meta.has_more }}"},
            "page_token_option": {"type": "RequestPath"}}));
        assert!(
            p.advance(
                &resp(),
                &json!({"meta": {"next": "https://x/p2", "has_more": true}}),
                5,
                None,
                &ctx
            )
            .unwrap()
        );
        let mut o = Options::default();
        p.options(&mut o, &ctx).unwrap();
        assert_eq!(o.path.as_deref(), Some("https://x/p2"));
        assert!(
            !p.advance(
                &resp(),
                &json!({"meta": {"next": "https://x/p3", "has_more": false}}),
                5,
                None,
                &ctx
            )
            .unwrap()
        );
        let mut p = pages(json!({"type": "DefaultPaginator",
            "pagination_strategy": {"type": "CursorPagination", "cursor_value": "{{ headers.link.next.url }}"},
            "page_token_option": {"type": "RequestPath"}}));
        let linked = HttpResponse {
            status: 200,
            headers: vec![("link".into(), "<https://x/n>; rel=\"next\"".into())],
            body: vec![],
        };
        assert!(p.advance(&linked, &json!([]), 1, None, &ctx).unwrap());
        assert!(
            !p.advance(&resp(), &json!([]), 1, None, &ctx).unwrap(),
            "no link: the end"
        );
    }
}
