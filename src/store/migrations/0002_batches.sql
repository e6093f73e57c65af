CREATE TABLE `batches` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`api_key_id` text,
	`endpoint` text NOT NULL,
	`label` text,
	`metadata` text NOT NULL,
	`request_count` integer NOT NULL,
	`created_at` integer NOT NULL,
	`cancelled_at` integer,
	`completed_at` integer
);
--> statement-breakpoint
CREATE INDEX `batches_org_created_idx` ON `batches` (`organization_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `batches_open_idx` ON `batches` (`completed_at`);--> statement-breakpoint
ALTER TABLE `responses` ADD `batch_id` text;--> statement-breakpoint
ALTER TABLE `responses` ADD `custom_id` text;--> statement-breakpoint
ALTER TABLE `responses` ADD `batch_index` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `responses_batch_custom_idx` ON `responses` (`batch_id`,`custom_id`);--> statement-breakpoint
CREATE INDEX `responses_batch_index_idx` ON `responses` (`batch_id`,`batch_index`);--> statement-breakpoint
CREATE INDEX `responses_batch_status_idx` ON `responses` (`batch_id`,`status`);