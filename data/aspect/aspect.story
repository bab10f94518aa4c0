in the end , the villain is stunning , yet the story is truly awkward .
in the end , the humour is brilliant , but the script is quite heartfelt .
frankly , the dialogue is truly lazy .
overall , the main character is predictable , yet the script is mostly delightful .
the lead performance seems shallow , but the pacing seems quite beautiful .
in the end , the editing looks sharp , yet the plot looks very lifeless .
in the end , the soundtrack feels awkward , yet the dialogue feels often witty .
honestly , the costume design is clever , but the story is very hollow .
overall , the set design looks bland , yet the first hour looks cheap .
in the end , the cast is lifeless , but the story is mostly vivid .
honestly , the lead performance looks funny , yet the dialogue looks very grating .
the villain seems predictable , but the plot seems inventive .
the acting is lazy , yet the story is vivid .
overall , the direction looks gripping , yet the story looks very lazy .
the lead performance is delightful , but the finale is flat .
honestly , the soundtrack seems engaging , yet the ending seems often inventive .
honestly , the finale is not rather stale .
the lead performance looks stunning , yet the plot looks mostly tedious .
honestly , the ending is very flat .
the dialogue is graceful .
in the end , the ending feels often tender .
in the end , the ending is clever .
overall , the editing feels brilliant , but the finale feels often clever .
honestly , the costume design is vivid , but the pacing is gripping .
overall , the first hour seems very vivid .
the script looks quite awkward .
overall , the ending is not rather moving .
frankly , the finale looks not lazy .
the cast seems dull , yet the story seems quite bland .
frankly , the supporting cast is sharp , yet the dialogue is often brilliant .
the dialogue is not often stunning .
the humour is tender , yet the script is truly moving .
honestly , the first hour is truly stale .
the dialogue is not truly awkward .
in the end , the main character feels inventive , but the pacing feels often muddled .
frankly , the direction looks stunning , but the dialogue looks very hollow .
frankly , the script is not shallow .
honestly , the dialogue is not sharp .
the main character looks hollow , but the story looks heartfelt .
the first hour looks not quite heartfelt .
overall , the soundtrack feels predictable , but the finale feels truly stunning .
frankly , the direction is clumsy , but the dialogue is mostly vivid .
the finale is rather dull .
the pacing seems mostly sluggish .
overall , the first hour looks truly beautiful .
frankly , the costume design is muddled , but the pacing is mostly brilliant .
overall , the ending is grating .
frankly , the dialogue is often tedious .
the villain feels inventive , yet the script feels superb .
honestly , the acting is joyless , but the first hour is rather warm .
overall , the story seems not quite forgettable .
the villain seems brilliant , but the dialogue seems very beautiful .
the soundtrack is engaging , but the pacing is truly awkward .
in the end , the finale seems not truly joyless .
the script looks truly dull .
frankly , the set design is sluggish , but the plot is tedious .
the supporting cast seems delightful , but the dialogue seems very grating .
frankly , the humour feels hollow , yet the plot feels rather graceful .
in the end , the script feels not superb .
in the end , the soundtrack is sluggish , yet the pacing is rather messy .
the main character is sluggish , but the finale is mostly clever .
the direction looks shallow , but the ending looks rather bland .
frankly , the acting is moving , yet the script is warm .
in the end , the main character is beautiful , yet the plot is stale .
the direction seems heartfelt , but the ending seems charming .
the acting seems tiresome , yet the plot seems vivid .
the supporting cast is cheap , but the finale is forgettable .
in the end , the set design feels sharp , yet the script feels very tender .
the score feels grating , but the finale feels quite dull .
the finale is often awkward .
the direction looks forgettable , yet the ending looks very bland .
frankly , the story feels not awkward .
the story looks not predictable .
frankly , the story looks rather muddled .
overall , the supporting cast feels dull , yet the finale feels truly funny .
in the end , the supporting cast looks graceful , yet the dialogue looks superb .
in the end , the photography seems dull , but the dialogue seems very vivid .
the finale feels not beautiful .
honestly , the score is tender , but the dialogue is gripping .
overall , the dialogue is not mostly witty .
frankly , the story is rather muddled .
the story feels predictable .
the set design is charming , yet the script is rather brilliant .
the first hour is not lazy .
the photography feels beautiful , but the script feels mostly superb .
overall , the photography is clever , yet the pacing is quite warm .
honestly , the acting looks stunning , yet the finale looks truly gripping .
the pacing is not charming .
overall , the main character seems gripping , but the first hour seems very shallow .
the pacing is not very muddled .
the main character looks flat , but the ending looks very beautiful .
honestly , the set design feels brilliant , but the pacing feels stale .
honestly , the villain feels bland , but the story feels rather cheap .
the direction is awkward , yet the plot is warm .
the finale is very superb .
overall , the dialogue feels not rather hollow .
the score feels superb , yet the first hour feels very beautiful .
frankly , the photography seems sluggish , but the story seems rather beautiful .
in the end , the cast seems beautiful , yet the finale seems sharp .
frankly , the supporting cast looks witty , yet the finale looks mostly tender .
the dialogue seems not mostly heartfelt .
the dialogue looks not mostly funny .
overall , the costume design is lively , but the pacing is very stunning .
in the end , the first hour seems hollow .
the ending is not quite graceful .
the dialogue feels not rather delightful .
honestly , the photography is lazy , but the pacing is truly graceful .
the supporting cast is predictable , yet the finale is often heartfelt .
frankly , the plot seems often stunning .
the photography looks lazy , but the first hour looks very dull .
in the end , the ending is not quite forgettable .
frankly , the pacing looks often clumsy .
overall , the direction is lively , but the script is dull .
the pacing seems not truly gripping .
in the end , the set design looks heartfelt , but the finale looks quite tiresome .
overall , the finale is quite gripping .
overall , the ending feels not mostly warm .
overall , the script is brilliant .
the ending is not very joyless .
frankly , the ending looks not often vivid .
the first hour looks mostly awkward .
in the end , the pacing seems not heartfelt .
the finale feels not very tender .
the direction is lazy , yet the story is truly brilliant .
honestly , the first hour seems not truly engaging .
overall , the humour seems sluggish , yet the finale seems mostly witty .
overall , the soundtrack looks tedious , yet the plot looks very shallow .
the soundtrack looks lazy , yet the script looks quite funny .
the ending is lazy .
frankly , the pacing is rather forgettable .
the main character seems hollow , yet the dialogue seems often charming .
in the end , the finale feels not often joyless .
overall , the costume design looks forgettable , but the ending looks mostly lifeless .
overall , the editing seems beautiful , yet the script seems truly tiresome .
the dialogue is quite clumsy .
the direction is funny , but the plot is messy .
in the end , the set design seems stale , yet the plot seems lifeless .
honestly , the editing is hollow , yet the first hour is bland .
the first hour seems quite clever .
overall , the ending is not mostly superb .
frankly , the editing is charming , yet the script is truly graceful .
the first hour seems not truly vivid .
overall , the story feels mostly lively .
the set design is sharp , but the script is often tiresome .
honestly , the script is not witty .
in the end , the dialogue is awkward .
honestly , the dialogue feels not mostly bland .
in the end , the ending looks not truly predictable .
in the end , the finale looks not rather charming .
the first hour seems truly forgettable .
the soundtrack looks forgettable , yet the script looks truly beautiful .
in the end , the villain seems sluggish , yet the dialogue seems mostly gripping .
in the end , the finale looks not tiresome .
in the end , the photography feels witty , yet the script feels quite warm .
the main character looks shallow , yet the ending looks dull .
the ending seems not truly shallow .
in the end , the dialogue feels funny .
overall , the finale is not mostly dull .
frankly , the cast looks charming , yet the plot looks truly tiresome .
the editing is muddled , yet the pacing is often joyless .
honestly , the dialogue looks mostly dull .
in the end , the ending looks often charming .
frankly , the ending is engaging .
the photography is heartfelt , yet the pacing is often lazy .
honestly , the set design looks tender , but the story looks often bland .
honestly , the dialogue looks not often cheap .
frankly , the lead performance is funny , but the first hour is often sharp .
in the end , the pacing is not often tedious .
frankly , the dialogue feels clumsy .
the humour looks predictable , but the first hour looks quite engaging .
the script is not mostly flat .
the supporting cast looks charming , but the pacing looks quite gripping .
overall , the soundtrack seems cheap , yet the pacing seems gripping .
overall , the first hour looks not shallow .
honestly , the acting feels charming , but the script feels quite clumsy .
in the end , the ending feels not heartfelt .
the script seems dull .
the direction is dull , yet the script is often grating .
the script is mostly muddled .
in the end , the finale looks not very cheap .
the pacing seems rather sluggish .
overall , the script is truly charming .
the score feels tiresome , yet the first hour feels very charming .
the first hour looks very predictable .
the script seems quite lazy .
frankly , the story feels forgettable .
frankly , the lead performance is dull , but the story is often clever .
overall , the first hour seems quite tedious .
the finale looks not quite flat .
overall , the costume design is tender , but the first hour is rather funny .
honestly , the script seems not mostly bland .
in the end , the dialogue is truly beautiful .
the soundtrack is lazy , yet the plot is quite delightful .
honestly , the costume design looks awkward , but the plot looks truly muddled .
honestly , the script is rather lifeless .
the main character is messy , but the dialogue is very muddled .
frankly , the acting seems hollow , yet the plot seems funny .
the humour is hollow , but the script is very gripping .
the plot is not rather lively .
the soundtrack is lazy , but the ending is often engaging .
the finale feels not rather clumsy .
the finale looks not very bland .
frankly , the lead performance is warm , yet the finale is quite forgettable .
in the end , the costume design looks hollow , yet the ending looks truly charming .
honestly , the finale is warm .
the pacing seems not witty .
the photography seems flat , but the pacing seems very forgettable .
the cast is messy , yet the ending is truly delightful .
in the end , the soundtrack is awkward , yet the dialogue is rather charming .
in the end , the photography is warm , but the script is quite stunning .
the lead performance seems joyless , but the dialogue seems very lazy .
frankly , the acting feels stunning , but the script feels sluggish .
honestly , the ending looks rather joyless .
the dialogue feels quite messy .
in the end , the score seems vivid , but the plot seems truly grating .
honestly , the humour seems witty , but the plot seems rather tender .
the first hour looks not witty .
frankly , the photography looks vivid , but the pacing looks very tedious .
overall , the dialogue is not very gripping .
the set design is dull , but the plot is beautiful .
the plot is very grating .
honestly , the editing seems messy , yet the script seems mostly sharp .
frankly , the direction feels clever , but the script feels mostly vivid .
overall , the soundtrack seems cheap , but the first hour seems quite graceful .
the main character looks awkward , but the first hour looks brilliant .
in the end , the costume design is funny , but the first hour is mostly predictable .
the soundtrack looks predictable , but the first hour looks lively .
frankly , the photography looks messy , yet the first hour looks often lifeless .
honestly , the script feels not quite grating .
overall , the dialogue feels quite predictable .
overall , the editing feels sharp , but the finale feels engaging .
overall , the acting is clumsy , but the first hour is heartfelt .
the score is stale , but the plot is shallow .
in the end , the story is mostly tender .
the humour is flat , but the first hour is rather engaging .
overall , the first hour seems not rather tender .
in the end , the ending is not very predictable .
overall , the editing feels awkward , yet the script feels quite graceful .
the soundtrack seems flat , but the first hour seems witty .
the cast seems flat , but the story seems often forgettable .
the acting is inventive , yet the ending is tedious .
in the end , the photography is sharp , yet the pacing is very grating .
in the end , the finale looks not very warm .
the first hour feels not truly stunning .
in the end , the finale looks not clumsy .
the humour is bland , but the first hour is rather tender .
honestly , the set design seems awkward , but the script seems mostly hollow .
the editing is stale , but the story is often clumsy .
the ending looks mostly beautiful .
the finale looks not very stale .
honestly , the pacing feels truly charming .
honestly , the villain is cheap , yet the story is quite predictable .
the ending feels rather joyless .
the dialogue feels not mostly predictable .
in the end , the direction feels beautiful , but the script feels rather lazy .
in the end , the script is quite charming .
the plot is not tender .
frankly , the photography looks lively , yet the first hour looks truly inventive .
honestly , the story looks not moving .
the finale is not truly moving .
overall , the story feels rather stale .
the dialogue seems muddled .
honestly , the dialogue looks often clever .
overall , the direction looks awkward , yet the ending looks truly lifeless .
overall , the villain seems vivid , yet the story seems quite superb .
the acting is lazy , yet the story is rather tender .
in the end , the supporting cast is moving , but the plot is very messy .
overall , the soundtrack is tiresome , yet the story is tiresome .
honestly , the first hour is not very forgettable .
the costume design feels brilliant , but the script feels truly engaging .
in the end , the main character seems flat , but the script seems mostly muddled .
the pacing seems not often vivid .
the villain looks beautiful , but the first hour looks very clever .
honestly , the ending looks not charming .
the supporting cast feels cheap , but the story feels very superb .
the script is mostly gripping .
the cast looks shallow , yet the first hour looks quite charming .
honestly , the main character is sluggish , yet the script is witty .
frankly , the photography looks sharp , but the finale looks very inventive .
the costume design is tender , yet the first hour is charming .
the soundtrack is muddled , but the pacing is rather awkward .
in the end , the acting is stunning , but the script is clever .
overall , the set design feels tender , but the finale feels cheap .
the first hour feels not mostly brilliant .
overall , the set design is dull , but the pacing is dull .
in the end , the editing is sharp , yet the pacing is rather muddled .
the first hour is truly gripping .
honestly , the story looks awkward .
the finale feels quite beautiful .
honestly , the dialogue seems not engaging .
in the end , the main character seems charming , yet the pacing seems often messy .
the finale looks messy .
overall , the cast feels hollow , but the pacing feels often warm .
in the end , the soundtrack is brilliant , but the pacing is rather clumsy .
the score is moving , yet the story is charming .
frankly , the acting looks warm , but the pacing looks predictable .
the photography is awkward , yet the plot is quite gripping .
frankly , the finale is vivid .
honestly , the ending seems not lifeless .
the villain is funny , but the script is brilliant .
the main character seems muddled , but the pacing seems rather witty .
frankly , the pacing feels not rather messy .
frankly , the script is quite muddled .
the score is clumsy , but the dialogue is very muddled .
in the end , the finale is not often lazy .
frankly , the plot is charming .
the direction is delightful , yet the ending is very tender .
the first hour feels not often grating .
the photography feels stale , but the ending feels stunning .
in the end , the finale feels not mostly clumsy .
overall , the story seems quite superb .
honestly , the script seems truly superb .
in the end , the story looks mostly graceful .
honestly , the humour is bland , but the ending is rather tedious .
the pacing looks not joyless .
overall , the script seems not often cheap .
frankly , the supporting cast looks moving , but the finale looks engaging .
honestly , the score feels predictable , yet the story feels messy .
the first hour is not mostly tiresome .
frankly , the story is truly lively .
in the end , the photography looks lively , yet the dialogue looks sharp .
the supporting cast seems muddled , but the first hour seems rather funny .
the script is often tender .
the finale feels hollow .
honestly , the direction feels warm , yet the first hour feels delightful .
the main character feels stale , but the pacing feels very predictable .
in the end , the first hour is witty .
the humour feels brilliant , yet the ending feels mostly moving .
the soundtrack looks funny , but the dialogue looks moving .
honestly , the cast is tender , yet the pacing is often tiresome .
honestly , the ending is tiresome .
in the end , the finale feels not quite sharp .
the dialogue looks truly awkward .
overall , the supporting cast is muddled , yet the script is often graceful .
in the end , the humour is shallow , yet the dialogue is brilliant .
in the end , the score feels forgettable , yet the dialogue feels truly gripping .
the dialogue looks mostly sluggish .
honestly , the first hour looks not quite grating .
frankly , the main character is joyless , yet the story is very muddled .
frankly , the finale looks not often shallow .
honestly , the first hour feels rather lifeless .
in the end , the ending is not often delightful .
frankly , the lead performance feels messy , yet the ending feels quite forgettable .
the story looks not very brilliant .
the story feels not stale .
honestly , the soundtrack is moving , but the script is quite delightful .
honestly , the pacing feels clever .
frankly , the acting is sharp , yet the script is rather shallow .
the lead performance seems heartfelt , yet the first hour seems brilliant .
in the end , the editing is flat , but the script is often delightful .
overall , the plot feels not graceful .
overall , the humour is graceful , yet the plot is very dull .
the ending seems not often inventive .
the supporting cast feels awkward , but the pacing feels rather funny .
honestly , the first hour is very stunning .
the lead performance looks hollow , but the first hour looks very superb .
overall , the villain is dull , yet the script is lifeless .
honestly , the dialogue seems muddled .
the supporting cast is beautiful , yet the story is sluggish .
honestly , the cast is hollow , yet the dialogue is rather funny .
the photography looks graceful , yet the first hour looks tiresome .
the lead performance seems forgettable , yet the first hour seems truly bland .
overall , the first hour seems quite dull .
the lead performance seems stunning , yet the finale seems quite sluggish .
the dialogue feels not flat .
overall , the supporting cast seems delightful , yet the first hour seems rather predictable .
in the end , the humour is flat , yet the finale is stunning .
in the end , the finale is rather delightful .
frankly , the lead performance is witty , yet the script is charming .
the photography is sharp , yet the finale is very grating .
the ending is not quite funny .
the dialogue is often charming .
overall , the story is often stunning .
honestly , the direction seems sharp , yet the first hour seems rather inventive .
the supporting cast is awkward , but the dialogue is rather messy .
overall , the pacing feels mostly muddled .
the finale looks not rather charming .
honestly , the set design feels clever , but the script feels very clever .
overall , the dialogue seems stale .
the script is very flat .
the editing feels bland , but the dialogue feels mostly tedious .
the dialogue feels not often charming .
overall , the costume design looks gripping , yet the script looks mostly charming .
the first hour is rather awkward .
in the end , the acting is lively , but the finale is very sluggish .
the plot feels not often graceful .
the story feels mostly shallow .
overall , the costume design is tedious , but the first hour is rather sluggish .
honestly , the dialogue looks engaging .
honestly , the finale feels quite stunning .
in the end , the story is not vivid .
the editing is superb , but the ending is often delightful .
the ending seems not rather brilliant .
overall , the acting is awkward , yet the finale is truly delightful .
the ending is not tiresome .
honestly , the cast is hollow , yet the first hour is often messy .
the script is not truly cheap .
honestly , the editing feels forgettable , but the finale feels lifeless .
frankly , the story looks not very lively .
the score seems stunning , but the story seems mostly clumsy .
the photography looks messy , yet the plot looks quite cheap .
in the end , the set design is forgettable , yet the story is truly forgettable .
honestly , the supporting cast is bland , but the ending is rather sluggish .
in the end , the ending seems not quite clumsy .
frankly , the script feels not quite gripping .
frankly , the photography looks messy , yet the plot looks often tiresome .
frankly , the story is not quite grating .
the script is often graceful .
the pacing feels not mostly predictable .
the score feels muddled , but the first hour feels superb .
in the end , the plot feels not often tiresome .
the lead performance looks clumsy , but the pacing looks very beautiful .
honestly , the ending seems not truly sharp .
the plot is quite muddled .
the plot is lively .
overall , the supporting cast feels tedious , but the ending feels very cheap .
the story looks not vivid .
frankly , the main character feels awkward , but the script feels quite tiresome .
the supporting cast seems sharp , yet the story seems mostly heartfelt .
the main character is hollow , yet the story is warm .
the supporting cast seems predictable , yet the ending seems truly inventive .
honestly , the villain is funny , but the script is rather flat .
frankly , the photography is inventive , but the story is very bland .
the humour is messy , but the dialogue is quite lively .
overall , the plot is not quite dull .
the finale is quite beautiful .
the photography looks tender , but the pacing looks very shallow .
overall , the finale seems funny .
honestly , the costume design is beautiful , yet the finale is quite muddled .
frankly , the finale is tender .
overall , the plot seems not mostly grating .
overall , the direction is engaging , but the ending is engaging .
overall , the story looks not often clever .
the script feels often warm .
honestly , the script feels not heartfelt .
overall , the story is rather muddled .
in the end , the acting is clumsy , yet the first hour is quite stunning .
the first hour is not quite delightful .
in the end , the plot is not often flat .
the story looks not truly funny .
the script feels muddled .
overall , the score is dull , yet the pacing is stunning .
the score is bland , but the plot is tender .
in the end , the main character is joyless , yet the finale is rather grating .
the supporting cast is forgettable , but the finale is vivid .
overall , the main character feels sharp , yet the script feels vivid .
overall , the ending seems heartfelt .
overall , the main character is inventive , but the ending is joyless .
in the end , the script is not truly inventive .
the ending is not mostly warm .
in the end , the plot looks very tedious .
honestly , the supporting cast feels tedious , but the first hour feels mostly predictable .
the direction feels bland , yet the pacing feels very clever .
overall , the set design looks stale , yet the first hour looks very lifeless .
in the end , the editing is lively , yet the plot is very sluggish .
the acting feels tiresome , yet the plot feels rather warm .
in the end , the story looks often clever .
the cast is lazy , yet the finale is shallow .
the acting looks charming , yet the plot looks gripping .
the main character is shallow , but the finale is mostly beautiful .
the soundtrack looks stale , but the ending looks truly flat .
in the end , the story is not quite tender .
in the end , the soundtrack is charming , but the plot is rather delightful .
the script feels truly lazy .
overall , the dialogue is not rather sharp .
overall , the cast seems stunning , but the first hour seems gripping .
the first hour seems not quite warm .
the first hour is rather lively .
the score is delightful , but the ending is quite tiresome .
frankly , the first hour is not mostly forgettable .
the lead performance is delightful , but the story is often forgettable .
honestly , the main character seems lifeless , but the plot seems often cheap .
overall , the editing is engaging , yet the plot is lifeless .
frankly , the pacing looks flat .
in the end , the story is not rather moving .
in the end , the dialogue seems quite beautiful .
the lead performance seems joyless , but the dialogue seems quite delightful .
the lead performance looks inventive , yet the story looks truly stunning .
overall , the script seems not often stunning .
honestly , the script looks tiresome .
in the end , the finale is very engaging .
the supporting cast feels heartfelt , but the plot feels messy .
honestly , the villain is lifeless , yet the pacing is rather sluggish .
overall , the first hour is rather dull .
overall , the costume design is flat , but the ending is rather muddled .
frankly , the pacing feels mostly sluggish .
the score is inventive , yet the plot is cheap .
frankly , the villain seems shallow , but the ending seems quite sluggish .
in the end , the dialogue is shallow .
in the end , the cast looks stale , yet the first hour looks truly inventive .
overall , the acting is lively , yet the script is funny .
frankly , the main character is heartfelt , yet the finale is very cheap .
the villain is stale , yet the first hour is often sharp .
the story seems quite bland .
the first hour looks not hollow .
in the end , the script feels not often tender .
frankly , the lead performance feels heartfelt , yet the dialogue feels rather muddled .
in the end , the finale feels not predictable .
frankly , the main character looks stunning , but the script looks forgettable .
in the end , the score feels vivid , but the plot feels often bland .
overall , the finale is not very stale .
the acting feels lively , but the finale feels sluggish .
in the end , the cast is moving , yet the finale is quite stunning .
honestly , the script is often shallow .
frankly , the photography looks gripping , yet the first hour looks mostly clumsy .
honestly , the plot is not often gripping .
frankly , the costume design looks beautiful , but the finale looks mostly tiresome .
honestly , the direction seems forgettable , but the plot seems mostly dull .
overall , the story is mostly messy .
the finale is not forgettable .
in the end , the score looks shallow , but the finale looks quite brilliant .
honestly , the script feels very joyless .
the main character is bland , yet the first hour is truly hollow .
the photography feels lifeless , yet the ending feels very beautiful .
the villain seems sluggish , yet the pacing seems mostly stale .
the story seems very predictable .
overall , the first hour feels brilliant .
frankly , the photography is warm , yet the story is rather lifeless .
the pacing is not rather brilliant .
frankly , the first hour is clever .
the main character looks awkward , yet the first hour looks truly engaging .
overall , the finale is quite funny .
the first hour feels quite brilliant .
the lead performance looks joyless , but the plot looks beautiful .
overall , the soundtrack seems awkward , but the finale seems truly lively .
in the end , the first hour feels cheap .
in the end , the direction seems stale , yet the first hour seems mostly forgettable .
the finale looks not very warm .
in the end , the finale is not mostly sharp .
overall , the ending is not bland .
honestly , the acting seems awkward , but the ending seems rather awkward .
overall , the dialogue seems rather lazy .
honestly , the story looks not clever .
the set design is warm , yet the plot is heartfelt .
the humour seems cheap , yet the pacing seems truly heartfelt .
the lead performance is clever , but the first hour is charming .
the direction is vivid , but the plot is often tiresome .
the script is not tedious .
overall , the pacing feels very lively .
the direction seems tender , yet the finale seems rather delightful .
the plot looks not mostly hollow .
honestly , the cast looks stunning , yet the plot looks rather tender .
frankly , the story is charming .
honestly , the main character is sluggish , but the pacing is often dull .
honestly , the pacing seems messy .
the story is mostly superb .
overall , the pacing seems often clumsy .
honestly , the supporting cast is warm , yet the ending is rather awkward .
overall , the photography looks witty , yet the plot looks rather tedious .
honestly , the main character is joyless , but the dialogue is often cheap .
the humour is bland , yet the script is very funny .
in the end , the photography is graceful , but the ending is truly stale .
the finale looks not rather predictable .
honestly , the editing seems bland , but the plot seems quite moving .
honestly , the script is warm .
honestly , the costume design looks messy , yet the pacing looks awkward .
the plot feels rather bland .
frankly , the story is truly lifeless .
honestly , the plot is not often inventive .
the score is awkward , but the ending is very delightful .
overall , the costume design looks vivid , but the story looks tender .
honestly , the script seems not often tender .
honestly , the dialogue seems not often clumsy .
overall , the set design looks messy , yet the finale looks often brilliant .
frankly , the score looks awkward , but the pacing looks truly grating .
in the end , the plot seems not often grating .
the set design looks grating , but the plot looks often lazy .
frankly , the plot seems quite charming .
in the end , the plot looks not beautiful .
in the end , the soundtrack seems tedious , but the dialogue seems engaging .
in the end , the ending is rather funny .
the pacing seems grating .
the plot is not very moving .
the plot is not shallow .
the story feels quite joyless .
in the end , the plot is not quite lively .
overall , the plot seems not quite cheap .
honestly , the pacing seems rather graceful .
the costume design feels flat , yet the dialogue feels often lively .
overall , the costume design looks lifeless , yet the dialogue looks flat .
the ending is very flat .
overall , the supporting cast feels predictable , yet the story feels lifeless .
in the end , the direction is stunning , yet the script is sluggish .
the supporting cast is lazy , yet the plot is muddled .
the dialogue is not quite awkward .
the first hour is not quite joyless .
in the end , the photography is gripping , yet the ending is mostly sluggish .
the set design is graceful , yet the plot is inventive .
in the end , the acting feels engaging , yet the plot feels warm .
in the end , the soundtrack looks lively , but the first hour looks truly dull .
the finale feels truly stunning .
the set design is beautiful , but the plot is often bland .
frankly , the cast is forgettable , yet the script is very tender .
honestly , the story is hollow .
overall , the editing is clever , but the finale is rather cheap .
honestly , the finale feels not often graceful .
honestly , the plot looks tender .
overall , the set design is brilliant , but the story is very bland .
the score looks muddled , but the finale looks often vivid .
overall , the direction is grating , yet the plot is quite grating .
