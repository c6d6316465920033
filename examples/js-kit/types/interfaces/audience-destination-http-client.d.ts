declare module 'audience:destination/http-client@0.2.0' {
  /**
   * Send one request and wait for its response. Redirects are followed only to allowed hosts.
   */
  export function send(req: Request): Response;
  /**
   * An HTTP request.
   */
  export interface Request {
    /**
     * The method, uppercase ("GET", "POST", "PATCH", ...).
     */
    method: string,
    /**
     * The absolute URL. Its host must be on the operator's allow-list, and the scheme
     * must be https unless the operator allowed that host over plain http.
     */
    url: string,
    /**
     * Request headers as name/value pairs.
     */
    headers: Array<[string, string]>,
    /**
     * The request body; empty for none.
     */
    body: Uint8Array,
  }
  /**
   * An HTTP response (any status; a 4xx or 5xx is a response, not an `http-error`).
   */
  export interface Response {
    /**
     * The status code.
     */
    status: number,
    /**
     * Response headers as name/value pairs, names lowercase.
     */
    headers: Array<[string, string]>,
    /**
     * The response body.
     */
    body: Uint8Array,
  }
  /**
   * Why no response was received.
   */
  export type HttpError = HttpErrorDenied | HttpErrorTimeout | HttpErrorConnection | HttpErrorTooLarge;
  /**
   * The host refused to send the request (host not allowed, plain http not allowed,
   * malformed URL or method, body too large); the string says which. The host reports
   * the call as its own refusal, never as the partner's.
   */
  export interface HttpErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * No complete response within the host's request timeout.
   */
  export interface HttpErrorTimeout {
    tag: 'timeout',
  }
  /**
   * The connection failed or was reset; the string says how.
   */
  export interface HttpErrorConnection {
    tag: 'connection',
    val: string,
  }
  /**
   * The response body was larger than the host's cap.
   */
  export interface HttpErrorTooLarge {
    tag: 'too-large',
  }
}
