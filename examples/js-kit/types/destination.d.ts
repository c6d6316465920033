/// <reference path="./interfaces/audience-destination-hashing.d.ts" />
/// <reference path="./interfaces/audience-destination-http-client.d.ts" />
/// <reference path="./interfaces/audience-destination-log.d.ts" />
/// <reference path="./interfaces/audience-destination-pacing.d.ts" />
/// <reference path="./interfaces/audience-destination-plugin.d.ts" />
/// <reference path="./interfaces/audience-destination-types.d.ts" />
declare module 'audience:destination/destination@0.2.0' {
  export type * as AudienceDestinationHashing020 from 'audience:destination/hashing@0.2.0'; // import audience:destination/hashing@0.2.0
  export type * as AudienceDestinationHttpClient020 from 'audience:destination/http-client@0.2.0'; // import audience:destination/http-client@0.2.0
  export type * as AudienceDestinationLog020 from 'audience:destination/log@0.2.0'; // import audience:destination/log@0.2.0
  export type * as AudienceDestinationPacing020 from 'audience:destination/pacing@0.2.0'; // import audience:destination/pacing@0.2.0
  export type * as AudienceDestinationTypes020 from 'audience:destination/types@0.2.0'; // import audience:destination/types@0.2.0
  export * as plugin from 'audience:destination/plugin@0.2.0'; // export audience:destination/plugin@0.2.0
}
