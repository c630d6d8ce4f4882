//! Whole answers and upstream error bodies in the client's API. (Interface; lands here.)

use super::stream::Ids;
use super::{Api, Session, Usage};

/// Why a 2xx upstream body could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Translates a whole 2xx upstream body into the client's API, appending it to `out`.
pub fn translate(
    body: &[u8],
    session: &Session,
    ids: &Ids<'_>,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<Option<Usage>, Malformed> {
    let _ = (body, session, ids, scratch, out);
    Err(Malformed("not available yet".into()))
}

/// An upstream error body (a status the client is answered with, 4xx) in the client's
/// protocol shape, appended to `out`: the provider's message kept, its type mapped.
pub fn error(status: u16, body: &[u8], client: Api, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    let _ = (status, body, client, scratch, out);
}
