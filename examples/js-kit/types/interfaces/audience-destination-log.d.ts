declare module 'audience:destination/log@0.2.0' {
  /**
   * Write one line.
   */
  export function log(level: Level, message: string): void;
  /**
   * How important a line is.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
