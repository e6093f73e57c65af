CREATE TABLE `idempotency_keys` (
	`organization_id` text NOT NULL,
	`api_key_id` text NOT NULL,
	`key` text NOT NULL,
	`fingerprint` text NOT NULL,
	`surface` text NOT NULL,
	`response_id` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`organization_id`, `api_key_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_expires_idx` ON `idempotency_keys` (`expires_at`);--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`response_id` text NOT NULL,
	`url` text NOT NULL,
	`token` text,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`last_status` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`completed_at` integer
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_due_idx` ON `webhook_deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_response_idx` ON `webhook_deliveries` (`response_id`);--> statement-breakpoint
DROP INDEX `responses_status_idx`;--> statement-breakpoint
ALTER TABLE `responses` ADD `window` text DEFAULT 'standard' NOT NULL;--> statement-breakpoint
CREATE INDEX `responses_status_idx` ON `responses` (`status`,`created_at`);