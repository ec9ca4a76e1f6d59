// Package auth holds Natter's credentials logic: password hashing and
// rules, signed access tokens, opaque refresh tokens and login throttling.
// It stores nothing; package core combines it with chat.Store into sign-up,
// login, refresh and logout.
//
// Invariants:
//   - Passwords are stored only as argon2id PHC strings (Hasher); a login
//     for an unknown username costs the same work (VerifyDummy), so timing
//     does not reveal which usernames exist. At most MaxConcurrent hashes
//     run at once, bounding their memory.
//   - Access tokens are Ed25519-signed JWTs (alg EdDSA only) that expire
//     after a short TTL; Verify never trusts the token's own header for the
//     algorithm or key, and its errors never contain the token.
//   - Refresh tokens are 256-bit random strings; only their SHA-256 is
//     stored, so a leaked database does not yield live tokens.
//   - Login throttling delays guessing per username and per client address
//     with bounded delays and bounded memory, so it can slow a user down
//     but never lock them out for good.
//   - Everything with a clock takes it as an option; nothing here has
//     package-level mutable state.
package auth
