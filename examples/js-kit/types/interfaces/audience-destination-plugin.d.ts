/// <reference path="./audience-destination-types.d.ts" />
declare module 'audience:destination/plugin@0.2.0' {
  /**
   * Who the plugin is, what it can match on, and its limits, for this configuration. Called
   * at load; must be pure (no network, same answer for the same config).
   */
  export function describe(config: PluginConfig): Manifest;
  /**
   * Normalise, validate and hash users for the partner, keeping only the identifiers of
   * the selected `fields` (in the sync's priority order). Called at entry, before users are
   * queued. Must be pure and local (no network) and deterministic. Returns exactly one
   * `preparation` per user, in order.
   */
  export function prepareUsers(fields: Array<IdentifierKind>, users: Array<RawUser>): Array<Preparation>;
  /**
   * Exchange an authorization code for credentials, or renew credentials. A renewal that
   * returns no new refresh token must keep the old one.
   */
  export function authorize(config: PluginConfig, grant: Grant): Credentials;
  /**
   * One page of the ad accounts these credentials can use; pass `next-cursor` back for the
   * next page.
   */
  export function listAccounts(config: PluginConfig, creds: Credentials, cursor: string | undefined): AccountPage;
  /**
   * One page of the account's audiences whose name contains `query` (case-insensitive; empty
   * = all), with the partner's size and state. Each call must finish well within the call
   * budget on an account with thousands of audiences: return a short page with a cursor
   * rather than walking everything.
   */
  export function searchAudiences(config: PluginConfig, creds: Credentials, accountId: string, query: string, cursor: string | undefined): AudiencePage;
  /**
   * The audience `audience-id` (an `audience.id`) with its current size and state.
   */
  export function readAudience(config: PluginConfig, creds: Credentials, accountId: string, audienceId: string): Audience;
  /**
   * Every reason the sync described by `spec` cannot run in the account (empty: it can).
   * Checks at least: the account is usable by these credentials, the audience exists or
   * may be created, and its identifier kinds fit `spec.identifiers`. Must not create
   * anything.
   */
  export function checkTarget(config: PluginConfig, creds: Credentials, accountId: string, spec: AudienceSpec): Array<TargetProblem>;
  /**
   * Find the audience of `spec` in the account (by `spec.id`, else by name), or create it
   * when allowed.
   */
  export function upsertAudience(config: PluginConfig, creds: Credentials, accountId: string, spec: AudienceSpec): UpsertOutcome;
  /**
   * Add one batch of users to the audience.
   */
  export function addUsers(config: PluginConfig, creds: Credentials, accountId: string, target: AudienceTarget, batch: Batch): WriteOutcome;
  /**
   * Remove one batch of users from the audience. A plugin without the `removal` feature
   * returns `invalid-request`.
   */
  export function removeUsers(config: PluginConfig, creds: Credentials, accountId: string, target: AudienceTarget, batch: Batch): WriteOutcome;
  /**
   * How the batch submitted as `submission-id` is doing. A plugin without the
   * `asynchronous` feature returns `invalid-request`.
   */
  export function checkSubmission(config: PluginConfig, creds: Credentials, accountId: string, target: AudienceTarget, submissionId: string): SubmissionStatus;
  export type IdentifierKind = import('audience:destination/types@0.2.0').IdentifierKind;
  export type RawUser = import('audience:destination/types@0.2.0').RawUser;
  export type Preparation = import('audience:destination/types@0.2.0').Preparation;
  export type Manifest = import('audience:destination/types@0.2.0').Manifest;
  export type PluginConfig = import('audience:destination/types@0.2.0').PluginConfig;
  export type Credentials = import('audience:destination/types@0.2.0').Credentials;
  export type Grant = import('audience:destination/types@0.2.0').Grant;
  export type AccountPage = import('audience:destination/types@0.2.0').AccountPage;
  export type AudienceSpec = import('audience:destination/types@0.2.0').AudienceSpec;
  export type Audience = import('audience:destination/types@0.2.0').Audience;
  export type AudiencePage = import('audience:destination/types@0.2.0').AudiencePage;
  export type UpsertOutcome = import('audience:destination/types@0.2.0').UpsertOutcome;
  export type TargetProblem = import('audience:destination/types@0.2.0').TargetProblem;
  export type AudienceTarget = import('audience:destination/types@0.2.0').AudienceTarget;
  export type Batch = import('audience:destination/types@0.2.0').Batch;
  export type WriteOutcome = import('audience:destination/types@0.2.0').WriteOutcome;
  export type SubmissionStatus = import('audience:destination/types@0.2.0').SubmissionStatus;
  export type DestinationError = import('audience:destination/types@0.2.0').DestinationError;
}
