import { EnvSchema } from './env.schema.js';

/**
 * The validated configuration, injected by class. It is the `EnvSchema` instance
 * produced at start-up; the subclass only exists to give it an injection token
 * that reads as what it is.
 */
export abstract class AppConfig extends EnvSchema {}
