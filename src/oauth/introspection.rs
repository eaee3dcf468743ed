//! Who may learn what a token stands for (RFC 7662 §4: the server decides which clients
//! may introspect which tokens).

/// A client introspects only the tokens issued to it, unless the operator registered it
/// as a resource server (`client add --introspect-any`): otherwise any confidential client
/// could map every token it sees to its user.
pub fn may_introspect(client_id: &str, introspect_any: bool, token_client_id: &str) -> bool {
    introspect_any || client_id == token_client_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_tokens_or_any_for_a_resource_server() {
        let table = [
            ("a", false, "a", true),
            ("a", false, "b", false),
            ("a", true, "b", true),
            ("a", true, "a", true),
        ];
        for (client, any, token_client, expected) in table {
            assert_eq!(
                may_introspect(client, any, token_client),
                expected,
                "{client} (any: {any}) introspecting a token of {token_client}"
            );
        }
    }
}
