/** The Node.js version hoptrace needs. */
export declare const MIN_NODE: string;
/** The message for a Node that is too old, or undefined when `version` is new enough. */
export declare function nodeTooOld(version: string, what: string): string | undefined;
