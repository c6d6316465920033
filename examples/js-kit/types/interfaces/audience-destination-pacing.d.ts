declare module 'audience:destination/pacing@0.2.0' {
  /**
   * Report a reading; the host paces the connection's next requests by it. Cheap: call it
   * after every response that carries usage.
   */
  export function reportBudget(reading: Budget): void;
  /**
   * A reading of the partner's budget.
   */
  export interface Budget {
    /**
     * The share of the budget used, in percent (0 to 100; 100 = the partner refuses).
     */
    usedPercent: number,
    /**
     * When the partner says access returns if it is exhausted, in milliseconds.
     */
    regainAfterMs?: bigint,
  }
}
