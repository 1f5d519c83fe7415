package emulator

// Names of the counters read with Emulator.Count. A counter named after an
// operation counts the calls that succeeded; failures have counters of their
// own. Requests answered by FailNext are counted by none of them.
const (
	// CounterClientCredentials counts client_credentials grants answered 200.
	CounterClientCredentials = "token.client_credentials"
	// CounterPassword counts password grants answered 200.
	CounterPassword = "token.password"
	// CounterRefreshToken counts refresh_token grants answered 200.
	CounterRefreshToken = "token.refresh_token"
	// CounterPasswordFailed counts password grants refused with 400 for bad
	// user credentials (unknown user or wrong password).
	CounterPasswordFailed = "token.password.failed"
	// CounterPasswordLocked counts password grants refused with 423
	// because the user is locked. (Locking revokes the user's refresh
	// tokens, so a refresh grant of a locked user is an invalid refresh
	// token: 400.)
	CounterPasswordLocked = "token.password.locked"
	// CounterPasswordUnverified counts password grants with the right
	// password refused with 403 because the user is not verified yet
	// (Config.ManualUserVerification).
	CounterPasswordUnverified = "token.password.unverified"
	// CounterUsersVerify counts users verified with
	// POST /api/v2/users/verify/{userId} (200).
	CounterUsersVerify = "users.verify"
	// CounterInvalidClient counts token requests refused with 401
	// invalid_client.
	CounterInvalidClient = "token.invalid_client"
	// CounterRevoke counts revocations answered 200 (known token or not).
	CounterRevoke = "revoke"
	// CounterUsersCreate counts users created with POST /api/v2/users (201).
	CounterUsersCreate = "users.create"
	// CounterUsersCreateExists counts POST /api/v2/users answered 422
	// ENTITY_EXISTS.
	CounterUsersCreateExists = "users.create.exists"
	// CounterUsersGet counts GET /api/v2/users answered 200.
	CounterUsersGet = "users.get"
	// CounterUsersDelete counts users deleted with DELETE /api/v2/users (200).
	CounterUsersDelete = "users.delete"
	// CounterProcessCreate counts processes created, one per client
	// reference of a POST /api/v1/processes answered 201.
	CounterProcessCreate = "process.create"
	// CounterProcessExchange counts process tokens exchanged for an access
	// token (200).
	CounterProcessExchange = "process.exchange"
	// CounterData counts every call routed to a data endpoint, whatever its
	// outcome (401 and 403 included).
	CounterData = "data"
	// CounterUnauthorized counts 401s answered by the Access handler outside
	// the token endpoint.
	CounterUnauthorized = "unauthorized"
)
