-- What an HTTP attempt sent (docs/api.md, the attempt's `request`): {"method", "headers": [[name, value], …]} as JSON
-- text, headers in the order written (text, not jsonb: jsonb would not keep the bytes as stored). NULL for other
-- destinations, for attempts that sent nothing, and for rows older than this column. Shown with the attempt only;
-- nothing queries it by content. Pruned with its row.
ALTER TABLE attempt ADD COLUMN sent_request text;
