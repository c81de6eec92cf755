### NanoGen bot: English texts.
###
### One file per language, the same message ids in each (a test checks ids and
### variables). CREDITS($n) writes a number of credits with its noun, in the
### plural form of the `credits` message below. Numbers are written the
### language's way (1,000); ids and links arrive as text.
### Bot API limits: invoice titles 1-32 characters, descriptions 1-255,
### button labels short, callback answers up to 200 characters.


## Shared

credits = { $count ->
    [one] { $count } credit
   *[other] { $count } credits
}
balance-line = Your balance: { CREDITS($balance) }.
# What a banned user may still do: /balance, /history, /paysupport (as the Mini App says).
account-banned = This account is banned: it cannot draw pictures or buy credits. If you think this is a mistake, send /paysupport.
button-open-app = Open NanoGen
# A choice button that is the current setting.
button-selected = ✓ { $label }
button-back = « Back
unknown-command = I don't know that command. Send /help to see what I can do, or just write what I should draw.


## /start

# $name: the user's Telegram first name.
start-greeting-new = Welcome to NanoGen, { $name }! You got { CREDITS($welcome) } to start.
# A new user when there are no welcome credits (WELCOME_CREDITS=0).
start-greeting-new-no-gift = Welcome to NanoGen, { $name }!
start-greeting-back = Welcome back, { $name }!
# Used for $name when Telegram gives no first name.
start-default-name = there
start-intro = Send me a description of a picture and I will draw it with AI. /help lists prices and commands.


## /balance

balance-in-progress = Pictures in progress: { $active }.
balance-buy-hint = Send /buy to get more credits.


## Commands: the /help list and the Telegram command menu (setMyCommands, up to 256 characters each)

command-start = Welcome and your balance
command-balance = Your credits
command-buy = Buy credits with Telegram Stars
command-settings = Model and aspect ratio
command-language = Change the language
command-history = Your latest pictures
command-promo = Redeem a promo code
command-invite = Invite friends, earn credits
command-paysupport = Help with a payment
command-terms = Terms of service
command-help = What I can do


## /help

help-intro =
    NanoGen draws pictures with AI.
    Send me a description (up to { $max_chars } characters) and the picture arrives in this chat. Pictures are drawn with your model and aspect ratio from /settings.
help-edit-photo = To change a picture, send it with a caption saying what to change, or reply to it with the instruction.
help-prices-title = Prices:
# One line per model.
help-price-line = • { $model }: { CREDITS($cost) } per picture
help-commands-title = Commands:
# One line per command; $description is one of the command-* texts.
help-command-line = /{ $command }: { $description }
help-refund-note = A picture that cannot be made costs nothing: its credits come back.


## /buy: Telegram Stars invoices, one per credit pack

# Invoice title and price label: at most 32 characters.
pack-title = { CREDITS($credits) }
pack-description = { CREDITS($credits) } for AI pictures in NanoGen.
# $discount: percent saved per credit compared with the pack of $base_credits.
pack-description-discount = { CREDITS($credits) } for AI pictures in NanoGen: { $discount }% cheaper per credit than the pack of { $base_credits }.
# Shown by Telegram when a payment is refused before it is made.
pre-checkout-unknown-pack = This offer is no longer available. Send /buy to see the current packs.
pre-checkout-other-buyer = This invoice was made for another Telegram account. Open the app to buy credits.
pre-checkout-wrong-price = The price of this pack has changed. Send /buy for a new invoice.
payment-credited = Thank you! { CREDITS($credits) } added. Your balance: { CREDITS($balance) }.


## /settings: model and aspect ratio, chosen with inline buttons

settings-text =
    Your settings:
    Model: { $model }
    Aspect ratio: { $aspect_ratio }
    One picture costs { CREDITS($cost) }.
settings-choose-model = Choose the model:
settings-choose-aspect-ratio = Choose the aspect ratio:
settings-button-model = Model: { $model }
settings-button-aspect-ratio = Aspect ratio: { $aspect_ratio }
# A model button: its name and the cost of one picture.
settings-model-option = { $model } · { CREDITS($cost) }
# Callback answer after a choice is stored.
settings-saved = Saved
# The chosen model lacks the saved aspect ratio.
settings-aspect-ratio-reset = { $model } has no { $aspect_ratio } format; it will use { $fallback }.


## /language

language-choose = Choose your language:
language-button-ru = Русский
language-button-en = English
# Said in the language just chosen.
language-set = Language: English.


## Generations started from the chat

generation-queued =
    Queued! { $model } is drawing your picture; it will arrive in this chat shortly.
    Cost: { CREDITS($cost) }.
# The same message arrived again (Telegram re-sent it).
generation-replay-completed = This prompt was already drawn; the picture was sent to this chat.
generation-replay-ended = This message's picture already { $status ->
        [failed] failed
       *[cancelled] was cancelled
    }; send the prompt again.
generation-replay-queued = Your picture is queued and will arrive in this chat shortly; it was charged once.
# Appended to the four messages above when the balance after the debit is known.
generation-balance = Balance: { CREDITS($balance) }.
# Status names, for /history.
generation-status = { $status ->
        [pending] Queued
        [processing] Drawing
        [completed] Done
        [failed] Failed
       *[cancelled] Cancelled
    }


## Why a generation was not started

refusal-insufficient-credits = Not enough credits: this picture costs { CREDITS($cost) }. Send /buy to get more.
refusal-rate-limited = Too many pictures this minute. Try again in { $seconds ->
        [one] { $seconds } second
       *[other] { $seconds } seconds
    }.
refusal-too-many-active = At most { $limit ->
        [one] { $limit } picture
       *[other] { $limit } pictures
    } can be drawn at once. Wait for one to finish.
refusal-prompt-too-long = The description is too long: at most { $max_chars } characters, yours has { $length }.
# A model or aspect ratio that no longer fits (an old setting, a changed catalogue).
refusal-invalid-settings = This picture cannot be drawn with your current settings. Check them in /settings.
refusal-unknown = The picture could not be started. Please try again in a minute.


## A generation that failed (its credits are returned)

# $reason: one of the failure-reason-* texts; $next: one of the failure-next-* texts, what to do now.
generation-failed =
    Sorry, your picture could not be made: { $reason }
    The { CREDITS($cost) } it cost went back to your balance. { $next }
# Timed out while waiting in the queue (drawing had not started).
failure-reason-timeout = it waited too long in the queue.
# Timed out after drawing had started.
failure-reason-timeout-drawing = drawing it took too long.
failure-reason-rejected = the image service rejected this prompt or its images.
failure-reason-unavailable = the image service is unavailable right now.
failure-reason-failed = the image service could not make it.
failure-reason-retries = the image service kept failing.
failure-next-retry = Please try again: send the same request once more.
failure-next-rephrase = Try wording it differently and send it again.
failure-next-later = Please try again later.


## Buttons under a delivered picture, and their callback answers (up to 200 characters)

button-again = 🔁 Again
button-edit = ✏️ Edit
button-original = 📎 Original
callback-again-queued = Queued again. Cost: { CREDITS($cost) }.
callback-again-already = Already being drawn again: taps this close together count as one.
callback-again-pictures-gone = The pictures this edit used are no longer kept. Send the photo again with what to change.
callback-original-sent = Sending the original file.
# A button from an old message, or callback data we did not make.
callback-stale = This button is out of date.


## Editing a picture: photos, image files and albums sent to the chat, replies to pictures

# After the edit button under a delivered picture.
edit-ask-instruction = Write what to change in this picture.
# A photo or image file without a caption.
edit-photo-remembered = Got the picture! What should I change? Send the instruction as your next message, or reply to the picture with it.
# An album without a caption; $pictures: how many of its pictures will be edited together.
edit-album-remembered = Got { $pictures ->
        [1] the picture! What should I change?
       *[other] { $pictures } pictures! What should I do with them?
    } Send the instruction as your next message.
edit-not-an-image = I can only edit pictures: send a photo, or a JPEG, PNG or WebP file, with what to change.
# A voice message, audio, video, video note or GIF.
media-not-understood = I can't take voice messages, audio, video or GIFs. Write what I should draw as text, or send a photo with a caption saying what to change.
edit-sticker-refused = Stickers can't be edited. Send a photo, or a JPEG, PNG or WebP file, with what to change.
# A file sent as an image whose bytes are not one.
edit-not-a-picture-file = That file is not a JPEG, PNG or WebP picture, so I can't edit it.
edit-too-large = That picture is too large: I can edit pictures of up to { $max_mb } MB.
edit-download-failed = I couldn't fetch that picture from Telegram. Please send it again.
# A reply to a picture the bot delivered to someone else.
edit-not-yours = I can only edit pictures from this chat. Send the picture itself with what to change.
# $pictures: how many pictures are edited together (1 to the model's maximum).
edit-queued =
    Queued! { $model } is editing { $pictures ->
        [1] your picture
       *[other] your { $pictures } pictures
    }; the result will arrive in this chat shortly.
    Cost: { CREDITS($cost) }.
# The same message or album arrived again (Telegram re-sent it). generation-balance may follow.
edit-replay-queued = This edit is already on its way; it was charged once.
# An album with more pictures than the model takes; $sent: how many the user sent.
edit-album-trimmed = { $model } { $max_images ->
        [1] takes one picture at most, so I used the first of the { $sent } you sent.
       *[other] takes at most { $max_images } pictures, so I used the first { $max_images } of the { $sent } you sent.
    }
# A photo of an album that came after the album's edit had started (or after it asked for the instruction).
edit-album-photo-late = This picture came too late to be part of its album's edit: the album was already put together without it. Nothing was charged for it. To edit it, send it again with a caption saying what to change, or in a new album.


## Edited messages

# The user edited a message they had sent: each edit is answered, nothing is charged.
edited-message-ignored = I don't see edits to messages already sent. Send the corrected description as a new message.


## /history: the latest 10 generations

history-title = Your latest pictures:
# $status: a generation-status text; $prompt: shortened.
history-item = { $number }. { $status }: { $prompt }
history-empty = You have no pictures yet. Send me a description to draw the first one.


## /paysupport

paysupport-contact = For help with a payment, write to { $contact }.
# The same, when the list of purchases follows.
paysupport-contact-with-purchases = For help with a payment, write to { $contact }. Please include the payment's code shown below.
paysupport-purchases-title = Your latest purchases:
# $charge_id: shortened Telegram charge id; $date: YYYY-MM-DD.
paysupport-purchase-item = { $date }: { CREDITS($credits) } for { $stars } ⭐ (payment { $charge_id })
paysupport-no-purchases = You have no purchases yet.
paysupport-forwarded = Your request was forwarded to our team; they will write to you here in Telegram.
# Neither SUPPORT_CONTACT nor an operator chat is configured.
paysupport-unavailable = Payment support is not set up yet. Please try again later.
# Sent to the operator's chat (ALERT_CHAT_ID). $link opens a chat with the user.
paysupport-operator =
    Payment help requested by { $name } (id { $user_id }).
    Write to them: { $link }
    Latest purchases:
    { $purchases }


## /terms

terms-link = Terms of service: { $url }
terms-builtin =
    NanoGen terms, in short:
    • Credits are bought with Telegram Stars and spent on pictures; they are not exchanged back for money.
    • A picture that cannot be made costs nothing: its credits return to your balance automatically.
    • For a problem with a payment, send /paysupport.
    • Do not ask for illegal content, or pictures of real people that could harm them; accounts that do may be banned.
    • Pictures are drawn by third-party AI services. We keep your prompts and pictures so that you can see them in your history.


## /promo

promo-usage = Send the code after the command, for example: /promo SPRING
promo-granted = Code accepted: { CREDITS($credits) } added. Your balance: { CREDITS($balance) }.
promo-unknown = There is no such code, or it has expired.
promo-already-redeemed = You have already used this code.
promo-exhausted = This code has been used up.


## /invite: referral link

invite-text =
    Invite friends with your link: { $link }
    When a friend makes their first purchase, you get { CREDITS($bonus) }.
    Friends invited: { $invited }. Credits earned: { $earned }.
invite-disabled = Invitations are switched off right now.
