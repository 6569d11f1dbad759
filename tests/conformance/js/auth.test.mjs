// GoTrue (/auth/v1) as supabase-js uses it: sign-up, password sign-in, getUser, refresh-token
// rotation, sign-out, and the error codes auth-js exposes (protocol notes §7).

import { test } from 'node:test'
import assert from 'node:assert/strict'

import {
  useBackend,
  noError,
  anonClient,
  newUser,
  newEmail,
  newPassword,
  claims,
  sleep,
  UUID_RE,
} from './harness.mjs'

const target = await useBackend('auth')

// GoTrue accepts the previous refresh token again for a short "reuse interval" (10 s on
// hosted projects) before treating reuse as an attack; the local backend has none.
const REUSE_INTERVAL_MS = Number(process.env.CONFORMANCE_REFRESH_REUSE_INTERVAL_MS ?? (target.local ? 0 : 11_000))

test('sign-up returns a session whose JWT names the new user as authenticated', async () => {
  const client = anonClient()
  const email = newEmail('signup')
  const { data, error } = await client.auth.signUp({ email, password: newPassword() })
  noError(error)
  assert.ok(data.session, 'auto-confirmed sign-up yields a session')
  assert.match(data.user.id, UUID_RE, 'user id is a UUID')
  assert.equal(data.user.email, email)
  assert.equal(data.user.aud, 'authenticated')
  assert.equal(data.session.token_type, 'bearer')
  assert.ok(data.session.expires_in > 0, 'expires_in is positive')
  assert.ok(data.session.refresh_token.length > 0, 'a refresh token is issued')
  const c = claims(data.session.access_token)
  assert.equal(c.sub, data.user.id)
  assert.equal(c.role, 'authenticated')
  assert.equal(c.email, email)
  assert.ok(c.exp > Date.now() / 1000, 'exp is in the future')
  assert.equal(data.session.user.id, data.user.id)
})

test('sign-in with the right password succeeds and with a wrong one fails with invalid_credentials', async () => {
  const u = await newUser('signin', { profile: false })
  const fresh = anonClient()
  const good = await fresh.auth.signInWithPassword({ email: u.email, password: u.password })
  noError(good.error)
  assert.equal(good.data.user.id, u.id)
  assert.ok(good.data.session.access_token, 'a session is returned')
  assert.notEqual(good.data.session.refresh_token, u.session.refresh_token, 'a new session has its own refresh token')

  const bad = await anonClient().auth.signInWithPassword({ email: u.email, password: `${u.password}x` })
  assert.ok(bad.error, 'wrong password is refused')
  assert.equal(bad.error.status, 400)
  assert.equal(bad.error.code, 'invalid_credentials')
  assert.equal(bad.data.session, null)

  const nobody = await anonClient().auth.signInWithPassword({ email: newEmail('nobody'), password: 'whatever-123' })
  assert.equal(nobody.error?.code, 'invalid_credentials', 'an unknown email is indistinguishable from a wrong password')
})

test('sign-in treats the email case-insensitively', async () => {
  const u = await newUser('case', { profile: false })
  const { data, error } = await anonClient().auth.signInWithPassword({ email: u.email.toUpperCase(), password: u.password })
  noError(error)
  assert.equal(data.user.id, u.id)
})

test('getUser returns the signed-in user; without a session it fails', async () => {
  const u = await newUser('getuser', { profile: false })
  const { data, error } = await u.client.auth.getUser()
  noError(error)
  assert.equal(data.user.id, u.id)
  assert.equal(data.user.email, u.email)
  assert.equal(data.user.role, 'authenticated')

  const byJwt = await anonClient().auth.getUser(u.session.access_token)
  noError(byJwt.error)
  assert.equal(byJwt.data.user.id, u.id)

  const none = await anonClient().auth.getUser('not-a-jwt')
  assert.ok(none.error, 'a garbage token is refused')
  assert.ok([401, 403].includes(none.error.status), `status ${none.error.status} is 401/403`)
})

test('refreshing a session issues a new refresh token and refuses the old one', async () => {
  const u = await newUser('refresh', { profile: false })
  const oldRefresh = u.session.refresh_token
  const { data, error } = await u.client.auth.refreshSession()
  noError(error)
  assert.ok(data.session, 'a new session')
  assert.notEqual(data.session.refresh_token, oldRefresh, 'the refresh token rotates')
  assert.equal(data.user.id, u.id)
  assert.equal(claims(data.session.access_token).sub, u.id)

  // The new access token works.
  const me = await anonClient().auth.getUser(data.session.access_token)
  noError(me.error)

  if (REUSE_INTERVAL_MS) await sleep(REUSE_INTERVAL_MS)
  const reuse = await anonClient().auth.refreshSession({ refresh_token: oldRefresh })
  assert.ok(reuse.error, 'the rotated-out refresh token is refused')
  assert.equal(reuse.error.status, 400)
  assert.equal(reuse.error.code, 'refresh_token_already_used')
  assert.equal(reuse.data.session, null)

  const garbage = await anonClient().auth.refreshSession({ refresh_token: 'nope-not-a-token' })
  assert.ok(garbage.error, 'an unknown refresh token is refused')
  assert.equal(garbage.error.status, 400)
  assert.equal(garbage.error.code, 'refresh_token_not_found')
})

test('after sign-out the refresh token and the access token of that session are refused', async () => {
  const u = await newUser('signout', { profile: false })
  const { refresh_token, access_token } = u.session
  const out = await u.client.auth.signOut()
  noError(out.error)
  const session = await u.client.auth.getSession()
  assert.equal(session.data.session, null, 'the client forgot the session')

  const again = await anonClient().auth.refreshSession({ refresh_token })
  assert.ok(again.error, 'refresh after sign-out fails')
  assert.equal(again.error.status, 400)
  assert.equal(again.error.code, 'refresh_token_not_found')

  const me = await anonClient().auth.getUser(access_token)
  assert.ok(me.error, 'the signed-out session is gone for /user too')
  assert.equal(me.error.code, 'session_not_found')
  assert.equal(me.error.status, 403)
})

test('signing up an existing email fails with user_already_exists', async () => {
  const u = await newUser('dup', { profile: false })
  const { data, error } = await anonClient().auth.signUp({ email: u.email, password: newPassword() })
  assert.ok(error, 'duplicate sign-up is refused')
  assert.equal(error.status, 422)
  assert.equal(error.code, 'user_already_exists')
  assert.equal(data.session, null)
})

test('a too-short password is refused with weak_password', async () => {
  const { error } = await anonClient().auth.signUp({ email: newEmail('weak'), password: '12345' })
  assert.ok(error, 'a 5-character password is refused')
  assert.equal(error.status, 422)
  assert.equal(error.code, 'weak_password')
})

test('a signed-in client sends its access token to REST: auth.uid() is the user', async () => {
  const u = await newUser('uid')
  const { data, error } = await u.client.from('profiles').select('id').eq('id', u.id)
  noError(error)
  assert.deepEqual(data, [{ id: u.id }])
})
