"""The client credentials grant (RFC 6749 §4.4): a confidential client acts for the
account that owns it (as a Sinch access key acts for its project). No refresh token."""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import UnauthorizedClient
from ..issuing import audit_issuance, mint, new_grant_id
from ..models import Client, GrantType
from ..params import Params
from ..scopes import scopes_for_client
from ..unit_of_work import UnitOfWork


def client_credentials(ctx: Context, unit: UnitOfWork, client: Client, params: Params) -> dict[str, Any]:
    # RFC 6749 §4.4: "The client credentials grant type MUST only be used by
    # confidential clients."
    if not client.confidential or GrantType.CLIENT_CREDENTIALS.value not in client.grant_types:
        raise UnauthorizedClient("This client is not allowed to use the client_credentials grant.")
    settings = ctx.settings
    scopes = scopes_for_client(params.get("scope"), client.scopes, settings.scopes, settings.default_scopes)
    # RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
    grant_id = new_grant_id()
    issued, records = mint(
        ctx, client, account_id=client.owner_id, scopes=scopes, grant_id=grant_id, with_refresh=False
    )
    unit.save_tokens(records)
    audit_issuance(ctx, unit, client, client.owner_id, "client_credentials", grant_id)
    return issued.response()
