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
  UUID_RE,
} from './harness.mjs'

const target = await useBackend('auth')

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

test('refreshing a session issues a new refresh token; reusing a rotated-out one revokes the session', async () => {
  const u = await newUser('refresh', { profile: false })
  const t0 = u.session.refresh_token
  const { data, error } = await u.client.auth.refreshSession()
  noError(error)
  assert.ok(data.session, 'a new session')
  const t1 = data.session.refresh_token
  assert.notEqual(t1, t0, 'the refresh token rotates')
  assert.equal(data.user.id, u.id)
  assert.equal(claims(data.session.access_token).sub, u.id)
  const me = await anonClient().auth.getUser(data.session.access_token)
  noError(me.error, 'getUser with the new access token')

  // GoTrue's reuse interval (10 s): the direct parent of the live token, presented again right
  // away (two tabs refreshing at once), gets the live token back instead of a new one.
  const race = await anonClient().auth.refreshSession({ refresh_token: t0 })
  noError(race.error, 'the parent token within the reuse interval')
  assert.equal(race.data.session.refresh_token, t1, 'the live token is handed out again')

  const next = await anonClient().auth.refreshSession({ refresh_token: t1 })
  noError(next.error, 'refresh with the live token')
  const t2 = next.data.session.refresh_token
  assert.notEqual(t2, t1)

  // t0 is now a grandparent: presenting it is token theft, refused whatever the timing, and the
  // whole session is revoked.
  const reuse = await anonClient().auth.refreshSession({ refresh_token: t0 })
  assert.ok(reuse.error, 'a rotated-out token two generations back is refused')
  assert.equal(reuse.error.status, 400)
  assert.equal(reuse.error.code, 'refresh_token_already_used')
  assert.equal(reuse.data.session, null)
  const after = await anonClient().auth.refreshSession({ refresh_token: t2 })
  assert.ok(after.error, 'the live token of the revoked session is refused too')

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

  // GoTrue deletes the sessions (refresh_token_not_found); a server that keeps revoked rows
  // answers session_not_found, which auth-js reports as AuthSessionMissingError. Both mean
  // "signed out" to the client.
  const again = await anonClient().auth.refreshSession({ refresh_token })
  assert.ok(again.error, 'refresh after sign-out fails')
  assert.equal(again.error.status, 400)
  assert.ok(
    again.error.code === 'refresh_token_not_found' || again.error.name === 'AuthSessionMissingError',
    `refusal is refresh_token_not_found or session_not_found (got ${again.error.name} ${again.error.code})`,
  )

  // On the wire: /user with the signed-out session's access token is 403 session_not_found.
  const res = await fetch(`${target.url}/auth/v1/user`, {
    headers: { apikey: target.anonKey, Authorization: `Bearer ${access_token}`, 'X-Supabase-Api-Version': '2024-01-01' },
  })
  assert.equal(res.status, 403)
  assert.equal((await res.json()).code, 'session_not_found')
  const me = await anonClient().auth.getUser(access_token)
  assert.ok(me.error, 'auth-js getUser fails too')
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
