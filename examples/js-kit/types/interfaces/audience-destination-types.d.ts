declare module 'audience:destination/types@0.2.0' {
  /**
   * The name of a kind of identifier a user can be matched on. Well-known names, which the
   * host's API accepts and the conformance suite exercises:
   * 
   * | name | value as the caller sends it |
   * |---|---|
   * | `email` | an e-mail address |
   * | `phone` | a phone number, ideally E.164 (`+15559876543`) |
   * | `mobile-ad-id` | an Android advertising id (AAID / MAID) |
   * | `idfa` | Apple's identifier for advertisers |
   * | `external-id` | the caller's own id for the user, agreed with the partner |
   * | `first-name`, `last-name` | as typed |
   * | `date-of-birth` | `YYYY-MM-DD` |
   * | `gender` | `f`, `m` (or `female`, `male`) |
   * | `city`, `region` | as typed (`region`: state or province) |
   * | `postal-code` | as typed |
   * | `country` | ISO 3166-1 alpha-2 (`us`) |
   * 
   * A plugin lists the kinds it matches on in `manifest.identifiers`; the host refuses a
   * sync or a user with any other kind. Names are lowercase ASCII letters, digits and '-'.
   */
  export type IdentifierKind = string;
  /**
   * One identifier value of a user.
   */
  export interface Identifier {
    /**
     * What the value is.
     */
    kind: IdentifierKind,
    /**
     * The value. Raw as the caller sent it in `raw-user`; normalised and, where the
     * partner wants it, hashed in `prepared-user`.
     */
    value: string,
  }
  /**
   * A consent signal, as the caller recorded it for the user (Google's EEA consent).
   * # Variants
   * 
   * ## `"unspecified"`
   * 
   * Not recorded; the partner's default applies.
   * ## `"granted"`
   * 
   * The user granted it.
   * ## `"denied"`
   * 
   * The user denied it.
   */
  export type ConsentStatus = 'unspecified' | 'granted' | 'denied';
  /**
   * The consent signals a user carries. Partners that take no consent ignore them; a
   * partner that does (Google: `adUserData`, `adPersonalization`) sends them per member.
   */
  export interface Consent {
    /**
     * Consent to send the user's data to the partner for advertising.
     */
    adUserData: ConsentStatus,
    /**
     * Consent to personalised advertising.
     */
    adPersonalization: ConsentStatus,
  }
  /**
   * A user as the caller sends it to the host.
   */
  export interface RawUser {
    /**
     * The caller's stable id for this user. The host uses it to de-duplicate and to
     * report per-user outcomes; it is never sent to the partner unless the plugin does so.
     */
    key: string,
    /**
     * Every identifier the caller knows for the user; kinds may repeat.
     */
    identifiers: Array<Identifier>,
    /**
     * The user's consent signals, when the caller recorded any.
     */
    consent?: Consent,
  }
  /**
   * A user as the partner will receive it: identifiers normalised and hashed as the
   * partner expects. Produced by `prepare-users`, stored by the host, and handed back to
   * `add-users` / `remove-users` unchanged.
   */
  export interface PreparedUser {
    /**
     * The caller's key, copied from the `raw-user`.
     */
    key: string,
    /**
     * The identifiers to send, already in the partner's format. A multi-key partner
     * (Meta) builds its row from all of them; the kinds are the plugin's to choose.
     */
    identifiers: Array<Identifier>,
    /**
     * The consent signals, copied from the `raw-user`.
     */
    consent?: Consent,
  }
  /**
   * What `prepare-users` decided for one user.
   */
  export type Preparation = PreparationReady | PreparationNotSynced;
  /**
   * The user can be matched; send these identifiers.
   */
  export interface PreparationReady {
    tag: 'ready',
    val: PreparedUser,
  }
  /**
   * None of the selected match fields was present and valid. The string says why in
   * words an operator can act on ("no valid email: 'bob@' has no domain").
   */
  export interface PreparationNotSynced {
    tag: 'not-synced',
    val: string,
  }
  /**
   * Request limits the partner imposes. These are the plugin's defaults; an operator may
   * override each one in the host's configuration.
   */
  export interface Limits {
    /**
     * The most users the partner accepts in one add or remove request (Pinterest: 1900,
     * Meta and Google: 10000).
     */
    maxBatchSize: number,
    /**
     * The most requests per second the partner accepts per access token (Pinterest: 7).
     */
    requestsPerSecond: number,
    /**
     * The most requests the host may have in flight at once per access token.
     */
    maxConcurrentRequests: number,
    /**
     * The most batches that may be `submitted` (sent, outcome not yet known) at once per
     * audience; 0 = no limit. A partner that runs one job at a time per list (the Google
     * Ads API's offline user data jobs) says 1, and the host holds the next batch until
     * the previous one finished.
     */
    maxSubmissionsPerAudience: number,
    /**
     * The most requests per second across every connection of this plugin, when the
     * partner counts them per application (Google: per Cloud project owning the OAuth
     * client); none = no such limit.
     */
    appRequestsPerSecond?: number,
  }
  /**
   * How the host sends a user to the partner's authorization page (OAuth 2.0 code flow).
   */
  export interface OauthApp {
    /**
     * The authorization page as a template. The host replaces `{client-id}`,
     * `{redirect-uri}`, `{scopes}` and `{state}` (each URL-encoded) before redirecting.
     */
    authorizeUrl: string,
    /**
     * The scopes the plugin needs, joined by the host as the partner expects
     * (see `scope-separator`).
     */
    scopes: Array<string>,
    /**
     * How the scopes are joined in `{scopes}` (Pinterest and Meta: ",", Google: " ").
     */
    scopeSeparator: string,
  }
  /**
   * How a destination's audiences hold identifiers.
   * # Variants
   * 
   * ## `"one-kind"`
   * 
   * One identifier kind per audience, fixed when it is created (Pinterest customer
   * lists, Google lists: contact info or mobile ids). The sync's first match field the
   * plugin supports decides it; a user lacking that kind is Not Synced at entry.
   * ## `"multi-key"`
   * 
   * Each member is a row of several identifiers (Meta's multi-key schema). Every
   * selected match field the user has is sent.
   */
  export type AudienceKeys = 'one-kind' | 'multi-key';
  /**
   * Optional behaviour a plugin declares, so the host and the conformance suite know what
   * to expect.
   */
  export interface Features {
    /**
     * `remove-users` is implemented.
     */
    removal?: boolean,
    /**
     * `add-users` / `remove-users` may answer `submitted`; `check-submission` is
     * implemented.
     */
    asynchronous?: boolean,
    /**
     * The partner takes per-user consent; `prepared-user.consent` is sent.
     */
    consent?: boolean,
    /**
     * `search-audiences` is implemented (else it answers `invalid-request`).
     */
    audienceSearch?: boolean,
  }
  /**
   * Who the plugin is and what it can do. Returned by `describe`; must not use the network.
   */
  export interface Manifest {
    /**
     * A short machine name, lowercase letters, digits and '-' ("pinterest").
     */
    name: string,
    /**
     * The plugin's own version (semver).
     */
    version: string,
    /**
     * The name shown to people ("Pinterest").
     */
    displayName: string,
    /**
     * The identifier kinds this destination can match on.
     */
    identifiers: Array<IdentifierKind>,
    /**
     * How audiences hold identifiers.
     */
    audienceKeys: AudienceKeys,
    /**
     * What the plugin implements beyond the required exports.
     */
    features: Features,
    /**
     * The partner's request limits (defaults; the operator can override them).
     */
    limits: Limits,
    /**
     * OAuth details when the partner uses OAuth; none when credentials are configured
     * some other way.
     */
    oauth?: OauthApp,
    /**
     * The hosts the plugin needs to reach with this configuration ("api.pinterest.com";
     * with a `base-url`, that URL's host). The operator's allow-list, when set, replaces
     * this list.
     */
    defaultHosts: Array<string>,
  }
  /**
   * The operator's settings for this plugin, from the host's configuration.
   */
  export interface PluginConfig {
    /**
     * The partner's API base URL, to point the plugin at a sandbox; none = the partner's
     * real API.
     */
    baseUrl?: string,
    /**
     * The OAuth client id (app id) registered with the partner.
     */
    clientId?: string,
    /**
     * The OAuth client secret (app secret). Never log it.
     */
    clientSecret?: string,
    /**
     * Any other plugin-specific setting, as documented by the plugin.
     */
    settings: Array<[string, string]>,
  }
  /**
   * Credentials for one connection (one partner user's token). Never log any of it.
   */
  export interface Credentials {
    /**
     * The bearer token for API calls.
     */
    accessToken: string,
    /**
     * The token used to get a new access token, when the partner issues one.
     */
    refreshToken?: string,
    /**
     * When the access token expires, in seconds since the Unix epoch; none = never.
     */
    expiresAt?: bigint,
    /**
     * When the connection can no longer be renewed without the user signing in again, in
     * seconds since the Unix epoch (Pinterest: the refresh token's expiry; Meta: the
     * long-lived token's expiry); none = unknown or never. The host warns ahead of it.
     */
    renewableUntil?: bigint,
    /**
     * The scopes the partner granted.
     */
    scopes: Array<string>,
  }
  /**
   * An authorization code returned to the host's OAuth callback.
   */
  export interface AuthCode {
    /**
     * The `code` query parameter of the callback.
     */
    code: string,
    /**
     * The redirect URI used in the authorization request (partners check it matches).
     */
    redirectUri: string,
  }
  /**
   * What `authorize` exchanges for credentials.
   */
  export type Grant = GrantAuthorizationCode | GrantRefresh;
  /**
   * Complete the OAuth code flow.
   */
  export interface GrantAuthorizationCode {
    tag: 'authorization-code',
    val: AuthCode,
  }
  /**
   * Renew these credentials before (or after) they expire: with the refresh token
   * where the partner issues one, else by exchanging the access token itself (Meta's
   * `fb_exchange_token`). The host calls this ahead of `expires-at` and after an
   * `unauthorized` answer. Answer `unauthorized` when the user must sign in again.
   */
  export interface GrantRefresh {
    tag: 'refresh',
    val: Credentials,
  }
  /**
   * An ad account the connection can use.
   */
  export interface Account {
    /**
     * The partner's id for the account.
     */
    id: string,
    /**
     * The account's name as the partner shows it.
     */
    name: string,
    /**
     * What the connection may do in the account, in the partner's words ("OWNER").
     */
    permissions: Array<string>,
  }
  /**
   * One page of ad accounts.
   */
  export interface AccountPage {
    /**
     * The accounts on this page.
     */
    accounts: Array<Account>,
    /**
     * Pass this to `list-accounts` for the next page; none on the last page.
     */
    nextCursor?: string,
  }
  /**
   * The audience a sync delivers into, as configured by the user.
   */
  export interface AudienceSpec {
    /**
     * The partner's id of an existing audience the user picked (from `search-audiences`);
     * when set, the plugin uses that audience and `name` is only shown to people.
     */
    id?: string,
    /**
     * The audience's name at the partner; without `id`, `upsert-audience` finds an
     * audience by it.
     */
    name: string,
    /**
     * The identifier kinds the sync will send, in priority order: a `one-kind` partner
     * uses the first it supports.
     */
    identifiers: Array<IdentifierKind>,
    /**
     * A description to set when the audience is created.
     */
    description?: string,
    /**
     * Create the audience when no audience has this name; when false, a missing audience
     * is a `not-found` error.
     */
    createIfMissing: boolean,
  }
  /**
   * How an audience is doing, as the partner reports it.
   * # Variants
   * 
   * ## `"ready"`
   * 
   * Usable for targeting.
   * ## `"populating"`
   * 
   * Members are still being matched or processed.
   * ## `"too-small"`
   * 
   * Too few matched members to be used yet.
   * ## `"unusable"`
   * 
   * The partner will not use it (flagged, disabled, expired, closed); `status-detail`
   * says why.
   * ## `"unknown"`
   * 
   * The partner did not say.
   */
  export type AudienceState = 'ready' | 'populating' | 'too-small' | 'unusable' | 'unknown';
  /**
   * An audience's size as the partner reports it: partners report ranges or rounded
   * counts for privacy. Both none = not reported yet.
   */
  export interface AudienceSize {
    /**
     * The least it may be.
     */
    lower?: bigint,
    /**
     * The most it may be; equal to `lower` when exact.
     */
    upper?: bigint,
  }
  /**
   * An audience that exists at the partner.
   */
  export interface Audience {
    /**
     * The handle the host passes back to `add-users` / `remove-users`. Opaque to the
     * host: a plugin may pack several partner ids into it.
     */
    id: string,
    /**
     * The audience's name.
     */
    name: string,
    /**
     * True when this call created the audience.
     */
    created: boolean,
    /**
     * The identifier kinds it holds, when the partner says (a `one-kind` list's kind).
     */
    identifiers: Array<IdentifierKind>,
    /**
     * The partner's size for it.
     */
    size: AudienceSize,
    /**
     * The partner's state for it.
     */
    state: AudienceState,
    /**
     * The partner's own words for the state ("Too small: fewer than 100 matched").
     */
    statusDetail?: string,
    /**
     * Extra facts worth showing to people (partner ids, retention), as label/value.
     */
    details: Array<[string, string]>,
  }
  /**
   * One page of audiences.
   */
  export interface AudiencePage {
    /**
     * The audiences on this page (`created` is false).
     */
    audiences: Array<Audience>,
    /**
     * Pass this to `search-audiences` for the next page; none on the last page.
     */
    nextCursor?: string,
  }
  /**
   * What `upsert-audience` found or made.
   */
  export type UpsertOutcome = UpsertOutcomeReady | UpsertOutcomeCreateWithFirstBatch;
  /**
   * The audience exists now: found by name or id, or created.
   */
  export interface UpsertOutcomeReady {
    tag: 'ready',
    val: Audience,
  }
  /**
   * The partner can only create the audience together with its first members (Pinterest
   * refuses an empty customer list). The host will call `add-users` with
   * `audience-target.create` on the first batch. The string says why, for people.
   */
  export interface UpsertOutcomeCreateWithFirstBatch {
    tag: 'create-with-first-batch',
    val: string,
  }
  /**
   * What part of a sync's target a problem is about.
   * # Variants
   * 
   * ## `"account"`
   * 
   * The ad account (missing, disabled, no permission, terms not accepted).
   * ## `"audience"`
   * 
   * The audience (missing, unusable, not creatable).
   * ## `"identifiers"`
   * 
   * The identifier kinds (none supported, or the existing list keeps another kind).
   * ## `"credentials"`
   * 
   * The connection's credentials (a scope is missing).
   */
  export type TargetPart = 'account' | 'audience' | 'identifiers' | 'credentials';
  /**
   * One reason a sync's target cannot work.
   */
  export interface TargetProblem {
    /**
     * What it is about.
     */
    part: TargetPart,
    /**
     * What is wrong and what to do, for people ("the list 'VIP' holds mobile ids; pick
     * another list or match on mobile-ad-id").
     */
    message: string,
  }
  /**
   * Which audience `add-users` / `remove-users` write to.
   */
  export type AudienceTarget = AudienceTargetExisting | AudienceTargetCreate;
  /**
   * An audience that exists; the `audience.id` from `upsert-audience` or an earlier
   * `batch-outcome.created`.
   */
  export interface AudienceTargetExisting {
    tag: 'existing',
    val: string,
  }
  /**
   * No audience exists yet: create it with this spec, with the batch as its first
   * members, and report it in `batch-outcome.created`.
   */
  export interface AudienceTargetCreate {
    tag: 'create',
    val: AudienceSpec,
  }
  /**
   * One batch the host asks a plugin to write.
   */
  export interface Batch {
    /**
     * The host's id for the batch: the same on every retry of the same users, different
     * for different users. A plugin may derive a partner idempotency key or session id
     * from it.
     */
    id: string,
    /**
     * 1 on the first try, then 2, 3, ...
     */
    attempt: number,
    /**
     * The users, never more than `limits.max-batch-size`.
     */
    users: Array<PreparedUser>,
  }
  /**
   * A user the partner refused individually.
   */
  export interface RejectedUser {
    /**
     * The user's key.
     */
    key: string,
    /**
     * Why, in the partner's words where it gave any.
     */
    reason: string,
  }
  /**
   * Rows the partner dropped without saying which users they were (Meta's
   * `num_invalid_entries`, Google's `errorCounts`).
   */
  export interface UnattributedRejection {
    /**
     * How many rows.
     */
    count: number,
    /**
     * Why, in the partner's words.
     */
    reason: string,
    /**
     * Examples of the offending values as the partner showed them (at most 10 kept).
     */
    samples: Array<string>,
  }
  /**
   * The result of a successful add or remove request.
   */
  export interface BatchOutcome {
    /**
     * Users the partner refused individually.
     */
    rejected: Array<RejectedUser>,
    /**
     * Rows the partner dropped without naming them; the host counts them as not synced
     * (and never as synced) without knowing which users they were.
     */
    unattributed: Array<UnattributedRejection>,
    /**
     * Set when the call created the audience (`audience-target.create`); the host stores
     * it and uses `existing(id)` from then on.
     */
    created?: Audience,
  }
  /**
   * A batch the partner accepted and will finish later.
   */
  export interface Submission {
    /**
     * The partner's id for the request or job; passed back to `check-submission`. The
     * host stores it before anything else, so a restart resumes asking about it.
     */
    id: string,
    /**
     * How long to wait before the first `check-submission`, in milliseconds.
     */
    checkAfterMs: number,
  }
  /**
   * What an add or remove request did.
   */
  export type WriteOutcome = WriteOutcomeDone | WriteOutcomeSubmitted;
  /**
   * Finished: these are the per-user results.
   */
  export interface WriteOutcomeDone {
    tag: 'done',
    val: BatchOutcome,
  }
  /**
   * Accepted but not finished; ask with `check-submission`.
   */
  export interface WriteOutcomeSubmitted {
    tag: 'submitted',
    val: Submission,
  }
  /**
   * Why a call to the partner failed. The host's retry policy is driven by the variant.
   */
  export type DestinationError = DestinationErrorRateLimited | DestinationErrorUnauthorized | DestinationErrorNotFound | DestinationErrorInvalidRequest | DestinationErrorActionRequired | DestinationErrorTransient | DestinationErrorRejectedUsers;
  /**
   * The partner is throttling this token. Retry later; the value is the wait in
   * milliseconds when the partner said (`Retry-After`, Meta's regain time), else none
   * and the host backs off.
   */
  export interface DestinationErrorRateLimited {
    tag: 'rate-limited',
    val: number | undefined,
  }
  /**
   * The credentials are invalid, expired, revoked or lack a scope. The host tries one
   * renewal through `authorize`, then marks the connection as needing
   * re-authorization. The string says which, for people.
   */
  export interface DestinationErrorUnauthorized {
    tag: 'unauthorized',
    val: string,
  }
  /**
   * The account or audience is gone. The host marks the sync broken.
   */
  export interface DestinationErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The partner refused the request as sent; retrying it unchanged will not help. For a
   * batch, the host splits it to find the users at fault.
   */
  export interface DestinationErrorInvalidRequest {
    tag: 'invalid-request',
    val: string,
  }
  /**
   * The partner needs a person to act (accept terms, appeal a flag, grant access)
   * before this target can be used; the sync is marked broken with this message until
   * the user resumes it.
   */
  export interface DestinationErrorActionRequired {
    tag: 'action-required',
    val: string,
  }
  /**
   * Network failure, timeout, or a 5xx: retry with backoff.
   */
  export interface DestinationErrorTransient {
    tag: 'transient',
    val: string,
  }
  /**
   * The partner refused the whole request because of these users and processed none of
   * it (Google's Data Manager fails a request when any record fails validation and names
   * the records in its 400). The host errors these users with their reasons and sends
   * the rest of the batch again at once, without splitting it and without waiting.
   * Only for `add-users` / `remove-users`; from any other call the host treats it as
   * `invalid-request`.
   */
  export interface DestinationErrorRejectedUsers {
    tag: 'rejected-users',
    val: Array<RejectedUser>,
  }
  /**
   * How a submitted batch is doing.
   */
  export type SubmissionStatus = SubmissionStatusProcessing | SubmissionStatusFinished | SubmissionStatusFailed;
  /**
   * Still running; ask again after this many milliseconds (none: the host backs off).
   */
  export interface SubmissionStatusProcessing {
    tag: 'processing',
    val: number | undefined,
  }
  /**
   * Finished, with per-user results. Users not rejected count as synced.
   */
  export interface SubmissionStatusFinished {
    tag: 'finished',
    val: BatchOutcome,
  }
  /**
   * The partner failed the whole batch; the host treats the error as it would from
   * `add-users` (retry, split, or mark broken) and sends the users again if it retries.
   */
  export interface SubmissionStatusFailed {
    tag: 'failed',
    val: DestinationError,
  }
}
