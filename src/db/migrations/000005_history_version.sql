-- 000005 which pgipam made each change: `pgipam doctor` finds a stale copy of the actions in
-- remotes/ (the history of the last day names a version other than the CLI's).
alter table pgipam.history add column pgipam_version text;
